import { describe, expect, it } from 'vitest';
import { serviceSpec, TypeUrl, type EndpointSet, type LoadSample, type RevisionSpec } from '@switchyard/shared';
import type { ProtoObject } from '../../src/resources.js';
import { defaultTranslateOptions } from '../../src/translator/desired-state.js';
import { burstExitHoldMs, burstState, revisionBurst, throughActivator } from '../../src/translator/endpoints.js';
import type { BurstEntry } from '../../src/translator/desired-state.js';
import { translate } from '../../src/translator/index.js';
import { serviceRecord, tenantRecord } from './harness.js';
import { activatorRouting } from '../../src/translator/envoy/features/activator-headers.js';
import type { EndpointIR, RouteIR, ServiceIR } from '../../src/translator/ir.js';

const activator = [
  { address: '10.1.0.9', port: 8012 },
  { address: '10.1.0.10', port: 8012 },
];
const viaActivator: EndpointIR[] = [
  { address: '10.1.0.9', port: 8012, status: 'HEALTHY' },
  { address: '10.1.0.10', port: 8012, status: 'HEALTHY' },
];
const managed: RevisionSpec = { name: 'v1', command: './server', env: {} };
const staticRevision: RevisionSpec = { name: 'v1', env: {}, endpoints: [{ address: '10.0.0.1', port: 80 }] };
const base = { domains: ['api.acme.test'], revisions: [managed] };
const toZero = serviceSpec.parse({ ...base, scaling: { minInstances: 0 } });
const one = (status: EndpointIR['status']): EndpointIR[] => [{ address: '10.0.0.2', port: 80, status }];
const withBurst = (targetBurstCapacity: number, minInstances = 1) =>
  serviceSpec.parse({ ...base, scaling: { minInstances, maxConcurrency: 10, targetBurstCapacity } });
const burstEntry = (short: boolean): BurstEntry => ({ state: { short, lastShortAt: 0 }, capacity: 10, target: 20 });

describe('throughActivator', () => {
  const cases: {
    label: string;
    revision?: RevisionSpec;
    spec?: object;
    endpoints: EndpointIR[];
    configured?: boolean;
    burst?: BurstEntry;
    want: EndpointIR[];
  }[] = [
    { label: 'no endpoint at all: every activator replica', endpoints: [], want: viaActivator },
    { label: 'only draining endpoints: the activator', endpoints: one('DRAINING'), want: viaActivator },
    { label: 'only unhealthy endpoints: the activator', endpoints: one('UNHEALTHY'), want: viaActivator },
    { label: 'a ready endpoint of unknown health: the instances', endpoints: one('UNKNOWN'), want: one('UNKNOWN') },
    { label: 'a healthy endpoint: the instances', endpoints: one('HEALTHY'), want: one('HEALTHY') },
    { label: 'no activator configured: unchanged', endpoints: [], configured: false, want: [] },
    { label: 'minInstances 1: unchanged (never meant to be at zero)', endpoints: [], spec: serviceSpec.parse(base), want: [] },
    {
      label: 'gRPC service: the activator (it speaks HTTP/2)',
      endpoints: [],
      spec: serviceSpec.parse({ ...base, protocol: 'grpc', scaling: { minInstances: 0 } }),
      want: viaActivator,
    },
    { label: 'static revision: unchanged', revision: staticRevision, endpoints: [], want: [] },
    { label: 'burst capacity -1: the activator with ready instances', endpoints: one('HEALTHY'), spec: withBurst(-1), want: viaActivator },
    {
      label: 'short of burst capacity: the activator with ready instances',
      endpoints: one('HEALTHY'),
      spec: withBurst(20),
      burst: burstEntry(true),
      want: viaActivator,
    },
    {
      label: 'not short of burst capacity: the instances',
      endpoints: one('HEALTHY'),
      spec: withBurst(20),
      burst: burstEntry(false),
      want: one('HEALTHY'),
    },
    {
      label: 'short of burst capacity, minInstances 1, no instance ready: the activator',
      endpoints: [],
      spec: withBurst(20),
      burst: burstEntry(true),
      want: viaActivator,
    },
    {
      label: 'short of burst capacity without an activator configured: unchanged',
      endpoints: one('HEALTHY'),
      spec: withBurst(-1),
      configured: false,
      want: one('HEALTHY'),
    },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const spec = (c.spec ?? toZero) as typeof toZero;
      const activators = c.configured === false ? undefined : activator;
      expect(throughActivator(c.revision ?? managed, spec, c.endpoints, activators, c.burst)).toEqual(c.want);
    });
  }
});

describe('burstState: spare capacity (capacity − in flight) against the target burst capacity', () => {
  const hold = burstExitHoldMs;
  it.each([
    {
      label: 'spare below the target: short',
      previous: undefined,
      capacity: 10,
      concurrency: 0,
      now: 50,
      want: { short: true, lastShortAt: 50 },
    },
    {
      label: 'spare at the target: not short',
      previous: undefined,
      capacity: 20,
      concurrency: 0,
      now: 50,
      want: { short: false, lastShortAt: 0 },
    },
    {
      label: 'in flight eat the spare: short again',
      previous: { short: false, lastShortAt: 0 },
      capacity: 40,
      concurrency: 25,
      now: 70,
      want: { short: true, lastShortAt: 70 },
    },
    {
      label: 'back at the target within the hold: still short',
      previous: { short: true, lastShortAt: 100 },
      capacity: 40,
      concurrency: 0,
      now: 100 + hold - 1,
      want: { short: true, lastShortAt: 100 },
    },
    {
      label: 'at the target for the whole hold: leaves',
      previous: { short: true, lastShortAt: 100 },
      capacity: 40,
      concurrency: 0,
      now: 100 + hold,
      want: { short: false, lastShortAt: 100 },
    },
  ])('$label', ({ previous, capacity, concurrency, now, want }) => {
    expect(burstState(previous, { target: 20, capacity, concurrency, now })).toEqual(want);
  });
});

describe('revisionBurst', () => {
  const scaling = { targetBurstCapacity: 20, maxConcurrency: 10 };
  const ready = (n: number, status: EndpointIR['status'] = 'UNKNOWN'): EndpointIR[] =>
    Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 80, status }));
  const sample = (concurrency: number, ts: number) =>
    ({ schemaVersion: 1, tenant: 'acme', service: 'api', revision: 'v1', concurrency, rps: 1, ts, windowMs: 1000 }) as never;

  it('counts the endpoints that take requests × maxConcurrency as capacity (not draining or unhealthy ones)', () => {
    const endpoints = [...ready(2), ...ready(1, 'DRAINING'), ...ready(1, 'UNHEALTHY')];
    expect(revisionBurst(scaling, endpoints, undefined, undefined, 0).entry).toEqual({
      state: { short: false, lastShortAt: 0 },
      capacity: 20,
      target: 20,
    });
  });

  it('short on a fresh sample; a stale one counts as nothing in flight, and says when it goes stale', () => {
    expect(revisionBurst(scaling, ready(3), undefined, sample(15, 1000), 1500)).toEqual({
      entry: { state: { short: true, lastShortAt: 1500 }, capacity: 30, target: 20 },
      changeAt: 1000 + 3000 + 1,
    });
    expect(revisionBurst(scaling, ready(3), undefined, sample(15, 1000), 4500).entry.state.short).toBe(false);
  });

  it('says when the exit hold ends', () => {
    const { entry, changeAt } = revisionBurst(scaling, ready(3), { short: true, lastShortAt: 2000 }, undefined, 2500);
    expect(entry.state).toEqual({ short: true, lastShortAt: 2000 });
    expect(changeAt).toBe(2000 + burstExitHoldMs);
  });
});

describe('activator headers on the route', () => {
  const ir: RouteIR = { name: 'r', path: { kind: 'prefix', value: '/' }, headers: [], queryParams: [], timeoutMs: 30_000 };
  const service = (protocol: 'http' | 'grpc') => ({ tenant: 'acme', name: 'api', id: 'acme_api', protocol }) as ServiceIR;
  const split = (): ProtoObject => ({
    name: 'r',
    route: { weighted_clusters: { clusters: [{ name: 'sy_acme_api_blue' }, { name: 'sy_acme_api_green' }] } },
  });
  const clusters = (route: ProtoObject) => ((route.route as ProtoObject).weighted_clusters as { clusters: ProtoObject[] }).clusters;
  const headersFor = (cluster: string) => [
    { header: { key: 'x-switchyard-revision', value: cluster }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-switchyard-timeout-ms', value: '30000' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
  ];
  const withActivator = { group: 'envoy' as const, options: { ...defaultTranslateOptions, activator } };

  it.each(['http', 'grpc'] as const)(
    'each weighted cluster names its revision and the route timeout, overwriting a client value (%s)',
    (protocol) => {
      const route = split();
      activatorRouting.route?.(route, ir, service(protocol), withActivator);
      expect(clusters(route).map((c) => c.request_headers_to_add)).toEqual(['sy_acme_api_blue', 'sy_acme_api_green'].map(headersFor));
      expect(route.request_headers_to_add).toBeUndefined();
    },
  );

  it('a route to one revision carries the headers itself', () => {
    const route: ProtoObject = { name: 'r', route: { cluster: 'sy_acme_api_blue' } };
    activatorRouting.route?.(route, ir, service('http'), withActivator);
    expect(route.request_headers_to_add).toEqual(headersFor('sy_acme_api_blue'));
  });

  it.each([
    ['no activator', defaultTranslateOptions, 'envoy', 'http'],
    ['proxyless gRPC clients', { ...defaultTranslateOptions, activator }, 'grpc', 'http'],
  ] as const)('adds nothing for %s', (_label, options, group, protocol) => {
    const route = split();
    activatorRouting.route?.(route, ir, service(protocol), { group, options });
    expect(clusters(route).every((c) => c.request_headers_to_add === undefined)).toBe(true);
  });
});

describe('translate: target burst capacity from load samples', () => {
  const cluster = 'sy_acme_api_v1';
  const spec = {
    domains: ['api.acme.test'],
    scaling: { minInstances: 1, maxConcurrency: 10, targetBurstCapacity: 20 },
    revisions: [managed],
  };
  const set = (ready: number): EndpointSet => ({
    schemaVersion: 1,
    tenant: 'acme',
    service: 'api',
    revision: 'v1',
    generation: 1,
    ts: 0,
    endpoints: Array.from({ length: ready }, (_, i) => ({ id: `i${i}`, address: `10.0.0.${i + 1}`, port: 80, state: 'ready' as const })),
  });
  const sample = (concurrency: number, ts: number): LoadSample =>
    ({ schemaVersion: 1, tenant: 'acme', service: 'api', revision: 'v1', concurrency, rps: 1, ts, windowMs: 1000 }) as LoadSample;
  function run(ready: number, load: LoadSample | undefined, now: number, burst?: Map<string, BurstEntry['state']>) {
    const result = translate(
      {
        tenants: [tenantRecord('acme', ['acme.test'])],
        services: [serviceRecord('acme', 'api', spec)],
        endpointSets: new Map([[cluster, set(ready)]]),
        health: new Map(),
        now,
        ...(load === undefined ? {} : { load: new Map([[cluster, load]]) }),
        ...(burst === undefined ? {} : { burst }),
      },
      { ...defaultTranslateOptions, activator },
    );
    const assignment = result.snapshot.envoy.get(TypeUrl.ClusterLoadAssignment)?.get(cluster) as ProtoObject | undefined;
    const hosts = JSON.stringify(assignment).match(/10\.\d+\.\d+\.\d+/g) ?? [];
    return { hosts: [...new Set(hosts)], result };
  }

  it('one ready instance of 10 is short of 20: EDS carries the activator; three are not: the instances', () => {
    expect(run(1, undefined, 1000).hosts).toEqual(['10.1.0.9', '10.1.0.10']);
    expect(run(3, undefined, 1000).hosts).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });

  it('requests in flight eat the spare capacity; back at the target, the activator stays for the hold, then leaves', () => {
    const busy = run(3, sample(15, 1000), 1000);
    expect(busy.hosts).toEqual(['10.1.0.9', '10.1.0.10']);
    const states = new Map([...busy.result.burst].map(([c, e]) => [c, e.state]));
    const quiet = run(3, sample(0, 1500), 1500, states);
    expect(quiet.hosts).toEqual(['10.1.0.9', '10.1.0.10']);
    expect(quiet.result.nextChangeAt).toBe(1000 + burstExitHoldMs);
    expect(run(3, sample(0, 1500), 1000 + burstExitHoldMs, states).hosts).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });
});
