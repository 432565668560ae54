import { describe, expect, it } from 'vitest';
import type { EndpointSet, RevisionSpec } from '@switchyard/shared';
import { endpointKey, type EndpointHealth } from '../../src/translator/desired-state.js';
import { resolveEndpoints } from '../../src/translator/endpoints.js';
import { buildLoadAssignment } from '../../src/translator/envoy/cluster.js';
import { recordHealth } from '../../src/translator/inputs.js';
import { EndpointAllowlist } from '../../src/store/index.js';

const cluster = 'sy_acme_api_v1';
const managed: RevisionSpec = { name: 'v1', command: './server', env: {} };
const reap = { reapUnhealthyAfterMs: 60_000 };

function endpointSet(endpoints: EndpointSet['endpoints']): Map<string, EndpointSet> {
  return new Map([[cluster, { schemaVersion: 1, tenant: 'acme', service: 'api', revision: 'v1', generation: 3, endpoints, ts: 0 }]]);
}

function health(entries: [string, number, EndpointHealth][]): Map<string, Map<string, EndpointHealth>> {
  return new Map([[cluster, new Map(entries.map(([address, port, h]) => [endpointKey(address, port), h]))]]);
}

describe('resolveEndpoints', () => {
  it('uses the static endpoints of the spec, ignoring any endpoint set', () => {
    const revision: RevisionSpec = { name: 'v1', env: {}, endpoints: [{ address: '10.0.0.1', port: 80 }] };
    const state = { endpointSets: endpointSet([{ id: 'x', address: '10.9.9.9', port: 1, state: 'ready' }]), health: new Map(), now: 0 };
    expect(resolveEndpoints(revision, cluster, state, reap).endpoints).toEqual([{ address: '10.0.0.1', port: 80, status: 'UNKNOWN' }]);
  });

  it('has no endpoints for a managed revision without an endpoint set yet', () => {
    expect(resolveEndpoints(managed, cluster, { endpointSets: new Map(), health: new Map(), now: 0 }, reap)).toEqual({
      endpoints: [],
      dropped: [],
    });
  });

  it('leaves out starting instances and marks draining ones DRAINING whatever their health', () => {
    const state = {
      endpointSets: endpointSet([
        { id: 'a', address: '10.0.0.1', port: 80, state: 'starting' },
        { id: 'b', address: '10.0.0.2', port: 80, state: 'draining' },
      ]),
      health: health([['10.0.0.2', 80, { state: 'healthy', since: 0 }]]),
      now: 0,
    };
    expect(resolveEndpoints(managed, cluster, state, reap).endpoints).toEqual([{ address: '10.0.0.2', port: 80, status: 'DRAINING' }]);
  });

  it('maps checker health to EDS status, IPv6 included', () => {
    const state = {
      endpointSets: endpointSet([
        { id: 'a', address: '10.0.0.1', port: 80, state: 'ready' },
        { id: 'b', address: '10.0.0.2', port: 80, state: 'ready' },
        { id: 'c', address: 'fd00::3', port: 80, state: 'ready' },
        { id: 'd', address: '10.0.0.4', port: 80, state: 'ready' },
      ]),
      health: health([
        ['10.0.0.1', 80, { state: 'healthy', since: 0 }],
        ['10.0.0.2', 80, { state: 'unhealthy', since: 0 }],
        ['fd00::3', 80, { state: 'unknown', since: 0 }],
      ]),
      now: 1000,
    };
    expect(resolveEndpoints(managed, cluster, state, reap).endpoints.map((e) => e.status)).toEqual([
      'HEALTHY',
      'UNHEALTHY',
      'UNKNOWN',
      'UNKNOWN',
    ]);
  });

  it('reaps an endpoint unhealthy for the reap time, and says when the next one is due', () => {
    const state = {
      endpointSets: endpointSet([
        { id: 'a', address: '10.0.0.1', port: 80, state: 'ready' },
        { id: 'b', address: '10.0.0.2', port: 80, state: 'ready' },
        { id: 'c', address: '10.0.0.3', port: 80, state: 'ready' },
      ]),
      health: health([
        ['10.0.0.1', 80, { state: 'unhealthy', since: 40_000 }],
        ['10.0.0.2', 80, { state: 'unhealthy', since: 70_000 }],
        ['10.0.0.3', 80, { state: 'unhealthy', since: 50_000 }],
      ]),
      now: 100_000,
    };
    const resolved = resolveEndpoints(managed, cluster, state, reap);
    expect(resolved.endpoints.map((e) => e.address)).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(resolved.nextReapAt).toBe(110_000);
    expect(resolveEndpoints(managed, cluster, { ...state, now: 110_000 }, reap).endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
  });

  it('drops non-IP addresses with an error and keeps the first of duplicate addresses', () => {
    const state = {
      endpointSets: endpointSet([
        { id: 'a', address: 'worker.internal', port: 80, state: 'ready' },
        { id: 'b', address: '10.0.0.2', port: 80, state: 'ready' },
        { id: 'c', address: '10.0.0.2', port: 80, state: 'draining' },
      ]),
      health: new Map(),
      now: 0,
    };
    const resolved = resolveEndpoints(managed, cluster, state, reap);
    expect(resolved.endpoints).toEqual([{ address: '10.0.0.2', port: 80, status: 'UNKNOWN' }]);
    expect(resolved.dropped).toEqual([{ field: 'endpoints.v1[a]', message: expect.stringContaining('not an IP address') }]);
  });
});

describe('resolveEndpoints with the endpoint allowlist', () => {
  const options = { ...reap, endpointAllowlist: EndpointAllowlist.parse('10.0.0.0/8, fd00::/8') };

  it('keeps metadata, link-local and loopback addresses of an endpoint set out of EDS', () => {
    const state = {
      endpointSets: endpointSet([
        { id: 'meta4', address: '169.254.169.254', port: 80, state: 'ready' },
        { id: 'meta6', address: 'fd00:ec2::254', port: 80, state: 'ready' },
        { id: 'loop', address: '127.0.0.1', port: 9901, state: 'ready' },
        { id: 'outside', address: '192.168.1.1', port: 80, state: 'ready' },
        { id: 'ok', address: '10.0.0.7', port: 80, state: 'ready' },
      ]),
      health: new Map(),
      now: 0,
    };
    const resolved = resolveEndpoints(managed, cluster, state, options);
    expect(resolved.endpoints).toEqual([{ address: '10.0.0.7', port: 80, status: 'UNKNOWN' }]);
    expect(resolved.dropped.map((d) => d.field)).toEqual([
      'endpoints.v1[meta4]',
      'endpoints.v1[meta6]',
      'endpoints.v1[loop]',
      'endpoints.v1[outside]',
    ]);
    expect(resolved.dropped[0]?.message).toContain('link-local');
  });

  it('applies to static endpoints too, whoever wrote the record', () => {
    const revision: RevisionSpec = { name: 'v1', env: {}, endpoints: [{ address: '169.254.169.254', port: 80 }] };
    const resolved = resolveEndpoints(revision, cluster, { endpointSets: new Map(), health: new Map(), now: 0 }, options);
    expect(resolved).toEqual({
      endpoints: [],
      dropped: [{ field: 'endpoints.v1[169.254.169.254:80]', message: expect.stringContaining('link-local') }],
    });
  });
});

describe('resolveEndpoints from unchanged inputs', () => {
  const ready = (address: string) => ({ id: address, address, port: 80, state: 'ready' as const });
  const revision: RevisionSpec = { name: 'v1', command: './server', env: {} };

  it('gives the same endpoints and load assignment objects until the set, the health or the options change', () => {
    const endpointSets = endpointSet([ready('10.0.0.1'), ready('10.0.0.2')]);
    const healthByCluster = new Map<string, ReadonlyMap<string, EndpointHealth>>();
    const state = { endpointSets, health: healthByCluster, now: 0 };
    const first = resolveEndpoints(revision, cluster, state, reap);
    expect(resolveEndpoints(revision, cluster, { ...state, now: 5 }, reap)).toBe(first);
    expect(buildLoadAssignment(cluster, first.endpoints)).toBe(buildLoadAssignment(cluster, first.endpoints));
    expect(buildLoadAssignment('sy_acme_api_v2', first.endpoints).cluster_name).toBe('sy_acme_api_v2');

    const scope = { schemaVersion: 1 as const, tenant: 'acme', service: 'api', revision: 'v1' };
    recordHealth(healthByCluster, {
      ...scope,
      endpoint: { address: '10.0.0.2', port: 80 },
      state: 'healthy',
      previous: 'unknown',
      reason: '',
      votes: [],
      ts: 1,
    });
    const afterHealth = resolveEndpoints(revision, cluster, state, reap);
    expect(afterHealth).not.toBe(first);
    expect(afterHealth.endpoints.map((e) => e.status)).toEqual(['UNKNOWN', 'HEALTHY']);
    expect(resolveEndpoints(revision, cluster, state, { ...reap })).not.toBe(afterHealth);

    const next = { ...state, endpointSets: endpointSet([ready('10.0.0.3')]) };
    expect(resolveEndpoints(revision, cluster, next, reap).endpoints).toEqual([{ address: '10.0.0.3', port: 80, status: 'UNKNOWN' }]);
  });

  it('resolves again once an unhealthy endpoint is due to be reaped', () => {
    const state = {
      endpointSets: endpointSet([ready('10.0.0.1'), ready('10.0.0.2')]),
      health: health([['10.0.0.2', 80, { state: 'unhealthy', since: 0 }]]),
      now: 1000,
    };
    const before = resolveEndpoints(revision, cluster, state, reap);
    expect(before.endpoints).toHaveLength(2);
    expect(resolveEndpoints(revision, cluster, { ...state, now: 59_999 }, reap)).toBe(before);
    expect(resolveEndpoints(revision, cluster, { ...state, now: 60_000 }, reap).endpoints).toEqual([
      { address: '10.0.0.1', port: 80, status: 'UNKNOWN' },
    ]);
  });
});

describe('endpointKey', () => {
  it('brackets IPv6 addresses', () => {
    expect(endpointKey('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(endpointKey('fd00::1', 80)).toBe('[fd00::1]:80');
  });
});
