import { describe, expect, it } from 'vitest';
import { describeIssues, serviceSpec } from '../src/spec.js';

const minimal = {
  domains: ['echo.acme.test'],
  protocol: 'grpc',
  revisions: [
    { name: 'blue', endpoints: [{ address: '127.0.0.1', port: 50051 }] },
    { name: 'green', endpoints: [{ address: '127.0.0.1', port: 50052 }] },
  ],
  traffic: [
    { revision: 'blue', percent: 80 },
    { revision: 'green', percent: 20 },
  ],
};

function fieldsOf(input: unknown): string[] {
  const result = serviceSpec.safeParse(input);
  return result.success ? [] : describeIssues(result.error).map((i) => i.field);
}

describe('serviceSpec', () => {
  it('accepts the minimal body and fills App Runner defaults', () => {
    const spec = serviceSpec.parse(minimal);
    expect(spec.timeouts.request).toBe(120_000);
    expect(spec.scaling).toMatchObject({
      minInstances: 1,
      maxInstances: 25,
      maxConcurrency: 100,
      targetUtilization: 0.7,
      targetBurstCapacity: 0,
    });
    expect(spec.retries).toMatchObject({ attempts: 2, statusCodes: [429] });
    expect(spec.routes).toEqual([{ match: { prefix: '/', headers: [], queryParams: [] } }]);
  });

  it('parses durations with units', () => {
    const spec = serviceSpec.parse({ ...minimal, timeouts: { request: '2m', idle: '1.5s' } });
    expect(spec.timeouts).toEqual({ request: 120_000, idle: 1500 });
  });

  it.each([
    ['traffic not summing to 100', { ...minimal, traffic: [{ revision: 'blue', percent: 50 }] }, 'traffic'],
    ['traffic to a missing revision', { ...minimal, traffic: [{ revision: 'red', percent: 100 }] }, 'traffic[0].revision'],
    ['min above max', { ...minimal, scaling: { minInstances: 5, maxInstances: 2 } }, 'scaling.minInstances'],
    ['maxConcurrency above 1000', { ...minimal, scaling: { maxConcurrency: 5000 } }, 'scaling.maxConcurrency'],
    ['targetBurstCapacity below -1', { ...minimal, scaling: { targetBurstCapacity: -2 } }, 'scaling.targetBurstCapacity'],
    ['targetBurstCapacity not whole', { ...minimal, scaling: { targetBurstCapacity: 2.5 } }, 'scaling.targetBurstCapacity'],
    [
      'a reserved header',
      { ...minimal, headers: { request: { add: [{ name: 'x-envoy-upstream-rq-timeout-ms', value: '1' }] } } },
      'headers.request.add[0].name',
    ],
    ['a forwarded header removal', { ...minimal, headers: { response: { remove: ['X-Forwarded-For'] } } }, 'headers.response.remove[0]'],
    [
      'a substitution in a header value',
      { ...minimal, headers: { request: { add: [{ name: 'x-a', value: '%DOWNSTREAM_REMOTE_ADDRESS%' }] } } },
      'headers.request.add[0].value',
    ],
    ['an invalid regex', { ...minimal, routes: [{ match: { regex: '(' } }] }, 'routes[0].match.regex'],
    ['two path matches', { ...minimal, routes: [{ match: { prefix: '/', path: '/a' } }] }, 'routes[0].match'],
    ['an uppercase revision name', { ...minimal, revisions: [{ name: 'Blue', command: 'x' }], traffic: undefined }, 'revisions[0].name'],
    ['a revision without a source', { ...minimal, revisions: [{ name: 'blue' }], traffic: undefined }, 'revisions[0]'],
    ['an unknown field (raw Envoy config)', { ...minimal, envoy: { typed_config: {} } }, '(body)'],
    ['a bad domain', { ...minimal, domains: ['Not A Domain'] }, 'domains[0]'],
    [
      'a non-IP endpoint',
      { ...minimal, revisions: [{ name: 'blue', endpoints: [{ address: 'localhost', port: 1 }] }], traffic: undefined },
      'revisions[0].endpoints[0].address',
    ],
  ])('rejects %s, naming the field', (_label, input, field) => {
    expect(fieldsOf(input)).toContain(field);
  });
});
