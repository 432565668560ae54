import { describe, expect, it } from 'vitest';
import { serviceSpec, TypeUrl } from '@switchyard/shared';
import { serviceKey, translate, type DesiredState } from '../../src/translator/index.js';
import { serviceRecord, tenantRecord } from './harness.js';

/** Defence in depth: a stored service that fails translation keeps its last good translation. */

const good = serviceSpec.parse({
  domains: ['web.acme.test'],
  routes: [{ match: { prefix: '/v1' } }],
  revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.1', port: 80 }] }],
});
// What only a writer bypassing the API can store: the schema takes it, RE2 does not.
const bad = { ...good, routes: [{ match: { regex: '/(?=a)b', headers: [], queryParams: [] } }] };

function state(spec: unknown, lastGood?: DesiredState['lastGood']): DesiredState {
  return {
    tenants: [tenantRecord('acme', ['acme.test'])],
    services: [serviceRecord('acme', 'web', spec)],
    endpointSets: new Map(),
    health: new Map(),
    now: 0,
    ...(lastGood ? { lastGood } : {}),
  };
}

const clusters = (result: ReturnType<typeof translate>) => [...(result.snapshot.envoy.get(TypeUrl.Cluster)?.keys() ?? [])];

describe('the last good translation', () => {
  it('serves a service from its last good record while its current one fails, and reports why', () => {
    const first = translate(state(good));
    expect(first.accepted.map(serviceKey)).toEqual(['acme/web']);
    const lastGood = new Map(first.accepted.map((record) => [serviceKey(record), record]));

    const second = translate(state(bad, lastGood));
    expect(clusters(second)).toEqual(clusters(first));
    expect(second.snapshot.envoy.get(TypeUrl.RouteConfiguration)).toEqual(first.snapshot.envoy.get(TypeUrl.RouteConfiguration));
    expect(second.accepted).toEqual([]);
    expect(second.errors).toEqual([
      { tenant: 'acme', service: 'web', field: 'spec.routes[0].match.regex', message: expect.stringContaining('RE2') },
    ]);
  });

  it('leaves the service out when it never translated', () => {
    const result = translate(state(bad));
    expect(clusters(result)).toEqual([]);
    expect(result.errors.map((e) => e.field)).toEqual(['spec.routes[0].match.regex']);
  });
});
