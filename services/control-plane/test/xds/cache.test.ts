import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@switchyard/shared';
import { XdsCache, diffResources, nodeGroupOf } from '../../src/xds/cache.js';
import { encodeResource, setVersion } from '../../src/xds/encoding.js';
import { TypeState, noRevisionSynced, pendingFor, type SyncedView } from '../../src/xds/type-state.js';
import { pushOrder } from '../../src/xds/types.js';
import type { ProtoObject } from '../../src/resources.js';
import { cluster, endpoints, snapshotOf } from './helpers.js';

const EDS = TypeUrl.ClusterLoadAssignment;

function stateWith(resources: Record<string, ProtoObject>): TypeState {
  const state = new TypeState(EDS);
  state.apply(new Map(Object.entries(resources).map(([n, r]) => [n, encodeResource(EDS, n, r)])), 0);
  return state;
}

describe('diffing a snapshot against the cache', () => {
  const a = endpoints('a', [1001]);
  const b = endpoints('b', [2001]);
  const cases: {
    label: string;
    desired: Record<string, ProtoObject>;
    want: { added: number; updated: number; removed: number; changed: string[] };
  }[] = [
    { label: 'same objects: nothing', desired: { a, b }, want: { added: 0, updated: 0, removed: 0, changed: [] } },
    {
      label: 'equal copies: nothing',
      desired: { a: structuredClone(a), b: structuredClone(b) },
      want: { added: 0, updated: 0, removed: 0, changed: [] },
    },
    { label: 'one updated', desired: { a: endpoints('a', [1002]), b }, want: { added: 0, updated: 1, removed: 0, changed: ['a'] } },
    { label: 'one added', desired: { a, b, c: endpoints('c', [3001]) }, want: { added: 1, updated: 0, removed: 0, changed: ['c'] } },
    { label: 'one removed', desired: { a }, want: { added: 0, updated: 0, removed: 1, changed: ['b'] } },
  ];
  for (const { label, desired, want } of cases) {
    it(label, () => {
      const state = stateWith({ a, b });
      const counts = { added: 0, updated: 0, removed: 0 };
      const changes = diffResources(state, new Map(Object.entries(desired)), counts);
      expect({ ...counts, changed: [...changes.keys()].sort() }).toEqual(want);
    });
  }
});

describe('versions', () => {
  it('are content hashes: equal on another cache, different when content differs', () => {
    const one = encodeResource(EDS, 'a', endpoints('a', [1001]));
    const two = encodeResource(EDS, 'a', structuredClone(endpoints('a', [1001])));
    const other = encodeResource(EDS, 'a', endpoints('a', [1002]));
    expect(one.version).toBe(two.version);
    expect(one.version).not.toBe(other.version);
  });

  it('of a set do not depend on order, and change with any member', () => {
    const a = encodeResource(EDS, 'a', endpoints('a', [1001]));
    const b = encodeResource(EDS, 'b', endpoints('b', [2001]));
    const b2 = encodeResource(EDS, 'b', endpoints('b', [2002]));
    expect(setVersion([a, b])).toBe(setVersion([b, a]));
    expect(setVersion([a, b])).not.toBe(setVersion([a, b2]));
    expect(setVersion([])).toBe(`0-${'0'.repeat(32)}`);
  });

  it('count revisions only when something changed', () => {
    const cache = new XdsCache();
    const spec = { clusters: [cluster('a')], endpoints: [endpoints('a', [1001])] };
    cache.setSnapshot(snapshotOf(spec));
    const revision = cache.typeState('envoy', EDS).revision;
    expect(cache.setSnapshot(snapshotOf(structuredClone(spec)))).toEqual([]);
    expect(cache.typeState('envoy', EDS).revision).toBe(revision);
  });
});

describe('the cache', () => {
  it('is not ready until the first snapshot or markReady', async () => {
    const cache = new XdsCache();
    expect(cache.ready).toBe(false);
    const ready = cache.whenReady();
    cache.setSnapshot(snapshotOf({}));
    await ready;
    expect(cache.ready).toBe(true);
    const other = new XdsCache();
    other.markReady();
    expect(other.ready).toBe(true);
  });

  it('changes nothing when a resource cannot be encoded', () => {
    const cache = new XdsCache();
    cache.setSnapshot(snapshotOf({ clusters: [cluster('a')] }));
    const before = cache.summary();
    expect(() => cache.setSnapshot(snapshotOf({ clusters: [cluster('a'), cluster('b', { connect_timeout: 5 })] }))).toThrow(/cluster|cds/i);
    expect(cache.summary()).toEqual(before);
  });

  it('refuses a snapshot without a resource set for every node group', () => {
    const cache = new XdsCache();
    const { envoy } = snapshotOf({ clusters: [cluster('a')] });
    expect(() => cache.setSnapshot({ envoy } as never)).toThrow(/node group grpc/);
    expect(cache.ready).toBe(false);
  });

  it('notifies listeners with what changed, per group and type', () => {
    const cache = new XdsCache();
    cache.setSnapshot(snapshotOf({}));
    const seen: unknown[] = [];
    cache.onChange((changes) => seen.push(...changes));
    cache.setSnapshot(snapshotOf({ clusters: [cluster('a')] }));
    expect(seen).toEqual([
      expect.objectContaining({ group: 'envoy', typeUrl: TypeUrl.Cluster, added: 1 }),
      expect.objectContaining({ group: 'grpc', typeUrl: TypeUrl.Cluster, added: 1 }),
    ]);
  });
});

describe('node groups', () => {
  const cases: [string, 'envoy' | 'grpc'][] = [
    ['envoy', 'envoy'],
    ['gRPC Node Pure JS', 'grpc'],
    ['gRPC Go', 'grpc'],
    ['gRPC Java', 'grpc'],
    ['gRPC C-core', 'grpc'],
    ['', 'envoy'],
  ];
  for (const [userAgentName, group] of cases) {
    it(`${userAgentName || '(none)'} → ${group}`, () => expect(nodeGroupOf({ userAgentName })).toBe(group));
  }
});

describe('what a view lacks', () => {
  const a1 = endpoints('a', [1001]);
  const b1 = endpoints('b', [2001]);
  const view = (state: TypeState, synced: number, names: string[] | '*', overrides: SyncedView['overrides'] = new Map()): SyncedView => ({
    subscription: names === '*' ? state.wildcard : state.intern(names.join(','), () => ({ names, wildcard: false })),
    synced,
    overrides,
  });
  const summary = (p: ReturnType<typeof pendingFor>) => ({
    upserts: p.upserts.map((r) => r.name).sort(),
    removals: p.removals.map((r) => r.name).sort(),
  });

  it('an empty view lacks every subscribed resource that exists', () => {
    const state = stateWith({ a: a1, b: b1 });
    expect(summary(pendingFor(state, view(state, noRevisionSynced, ['a', 'x'])))).toEqual({ upserts: ['a'], removals: [] });
    expect(summary(pendingFor(state, view(state, noRevisionSynced, '*')))).toEqual({ upserts: ['a', 'b'], removals: [] });
  });

  it('a synced view lacks what changed since, within its subscription', () => {
    const state = stateWith({ a: a1, b: b1 });
    const synced = state.revision;
    state.apply(
      new Map([
        ['a', encodeResource(EDS, 'a', endpoints('a', [1002]))],
        ['b', undefined],
      ]),
      0,
    );
    expect(summary(pendingFor(state, view(state, synced, ['a', 'b'])))).toEqual({ upserts: ['a'], removals: ['b'] });
    expect(summary(pendingFor(state, view(state, synced, ['b'])))).toEqual({ upserts: [], removals: ['b'] });
  });

  it('a change reverted before the client saw it is not sent', () => {
    const state = stateWith({ a: a1 });
    const synced = state.revision;
    state.apply(new Map([['a', encodeResource(EDS, 'a', endpoints('a', [1002]))]]), 0);
    state.apply(new Map([['a', encodeResource(EDS, 'a', a1)]]), 0);
    expect(summary(pendingFor(state, view(state, synced, ['a'])))).toEqual({ upserts: [], removals: [] });
  });

  it('overrides say what the client holds instead (delta reconnect versions, new names)', () => {
    const state = stateWith({ a: a1, b: b1 });
    const held = new Map([
      ['a', { name: 'a', version: state.resources.get('a')!.version }],
      ['b', { name: 'b', version: 'old' }],
      ['gone', { name: 'gone', version: 'x' }],
    ]);
    expect(summary(pendingFor(state, view(state, noRevisionSynced, ['a', 'b', 'gone'], held)))).toEqual({
      upserts: ['b'],
      removals: ['gone'],
    });
  });

  it('trimming the log folds lagging views forward without changing what they lack', () => {
    const state = stateWith({ a: a1, b: b1 });
    const lagging = view(state, state.revision, ['a', 'b']);
    state.views.add(lagging);
    for (let port = 1002; port < 1010; port++) state.apply(new Map([['a', encodeResource(EDS, 'a', endpoints('a', [port]))]]), 0);
    state.apply(new Map([['b', undefined]]), 0);
    const before = summary(pendingFor(state, lagging));
    state.compact(4);
    expect(state.logLength).toBeLessThanOrEqual(5);
    expect(summary(pendingFor(state, lagging))).toEqual(before);
    expect(before).toEqual({ upserts: ['a'], removals: ['b'] });
  });

  it('keeps the push order CDS, EDS, SDS, ECDS, LDS, RDS, SRDS', () => {
    expect(pushOrder).toEqual([
      TypeUrl.Cluster,
      TypeUrl.ClusterLoadAssignment,
      TypeUrl.Secret,
      TypeUrl.ExtensionConfig,
      TypeUrl.Listener,
      TypeUrl.RouteConfiguration,
      TypeUrl.ScopedRouteConfiguration,
    ]);
  });
});
