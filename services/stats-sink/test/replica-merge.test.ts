import { describe, expect, it } from 'vitest';
import type { LoadPartial } from '@switchyard/shared';
import { ReplicaMerge } from '../src/replica-merge.js';

const rev = { tenant: 'acme', service: 'web', revision: 'v1' };
const share = (node: string, at: number, concurrency: number) => ({
  node,
  at,
  concurrency,
  rps: concurrency * 10,
  responses: { '2xx': concurrency * 10, '3xx': 0, '4xx': 0, '5xx': 0 },
  windowMs: 1000,
});
const partial = (replica: string, ts: number, nodes: ReturnType<typeof share>[]): LoadPartial => ({
  schemaVersion: 1,
  ...rev,
  replica,
  ts,
  freshForMs: 2000,
  nodes,
});

describe('ReplicaMerge', () => {
  it.each([
    {
      label: 'two replicas, one Envoy each: the fleet total is the sum (3 + 4 = 7)',
      partials: [partial('a', 1000, [share('envoy-1', 1000, 3)]), partial('b', 1000, [share('envoy-2', 1000, 4)])],
      now: 1500,
      concurrency: 7,
      nodes: 2,
    },
    {
      label: 'an Envoy that moved counts once, by the replica that heard from it last',
      partials: [partial('a', 1000, [share('envoy-1', 900, 3)]), partial('b', 1000, [share('envoy-1', 980, 5)])],
      now: 1500,
      concurrency: 5,
      nodes: 1,
    },
    {
      label: "a dead replica's partial ages out after its freshness",
      partials: [partial('a', 1000, [share('envoy-1', 1000, 3)]), partial('b', 3000, [share('envoy-2', 3000, 4)])],
      now: 3500,
      concurrency: 4,
      nodes: 1,
    },
    {
      label: 'an older partial of the same replica does not replace a newer one',
      partials: [partial('a', 2000, [share('envoy-1', 2000, 6)]), partial('a', 1000, [share('envoy-1', 1000, 1)])],
      now: 2500,
      concurrency: 6,
      nodes: 1,
    },
  ])('$label', ({ partials, now, concurrency, nodes }) => {
    const merge = new ReplicaMerge('a');
    for (const p of partials) merge.add(p);
    expect(merge.merged(rev, now)).toMatchObject({ ...rev, concurrency, nodes, rps: concurrency * 10 });
  });

  it('has nothing to say once every partial is stale', () => {
    const merge = new ReplicaMerge('a');
    merge.add(partial('a', 1000, [share('envoy-1', 1000, 3)]));
    expect(merge.merged(rev, 5000)).toBeUndefined();
  });

  it('lets the lowest replica that reports a revision publish it, and the next one once that one goes quiet', () => {
    const a = new ReplicaMerge('a');
    const b = new ReplicaMerge('b');
    for (const merge of [a, b]) {
      merge.add(partial('a', 1000, [share('envoy-1', 1000, 3)]));
      merge.add(partial('b', 1000, [share('envoy-2', 1000, 4)]));
    }
    expect([a.publishes(rev, 1500), b.publishes(rev, 1500)]).toEqual([true, false]);
    b.add(partial('b', 3000, [share('envoy-2', 3000, 4)]));
    expect(b.publishes(rev, 3500)).toBe(true);
    expect(new ReplicaMerge('c').publishes(rev, 1500)).toBe(false);
  });
});
