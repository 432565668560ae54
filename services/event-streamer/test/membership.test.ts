import { describe, expect, it } from 'vitest';
import { Assigner } from '../src/assigner.js';
import { aggregatorOf, checkerChanges, fleetView, type FleetView, type ReplicaHeartbeat } from '../src/membership.js';

const ttl = 3000;
const now = 100_000;
const envoy = (node: string, connectedAt = 1000, protocols: ('http' | 'tcp')[] = []) => ({ node, protocols, connectedAt });
const owners = (view: FleetView) => Object.fromEntries([...view.checkers].map(([id, m]) => [id, m.replica]));

describe('fleetView', () => {
  const cases: { label: string; heartbeats: ReplicaHeartbeat[]; replicas: string[]; owners: Record<string, string> }[] = [
    { label: 'no replica', heartbeats: [], replicas: [], owners: {} },
    {
      label: 'the union of two replicas’ Envoys',
      heartbeats: [
        { replica: 'b', at: now - 100, envoys: [envoy('e3')] },
        { replica: 'a', at: now - 100, envoys: [envoy('e1'), envoy('e2')] },
      ],
      replicas: ['a', 'b'],
      owners: { e1: 'a', e2: 'a', e3: 'b' },
    },
    {
      label: 'a stale heartbeat drops its replica and its Envoys',
      heartbeats: [
        { replica: 'a', at: now - 100, envoys: [envoy('e1')] },
        { replica: 'b', at: now - ttl - 1, envoys: [envoy('e2')] },
      ],
      replicas: ['a'],
      owners: { e1: 'a' },
    },
    {
      label: 'a heartbeat exactly ttl old still counts',
      heartbeats: [{ replica: 'a', at: now - ttl, envoys: [envoy('e1')] }],
      replicas: ['a'],
      owners: { e1: 'a' },
    },
    {
      label: 'an Envoy that moved belongs to its later connection, counted once',
      heartbeats: [
        { replica: 'a', at: now - 100, envoys: [envoy('e1', 1000)] },
        { replica: 'b', at: now - 100, envoys: [envoy('e1', 5000)] },
      ],
      replicas: ['a', 'b'],
      owners: { e1: 'b' },
    },
    {
      label: 'the same connection time: the lower replica id, whatever the order',
      heartbeats: [
        { replica: 'b', at: now - 100, envoys: [envoy('e1', 1000)] },
        { replica: 'a', at: now - 100, envoys: [envoy('e1', 1000)] },
      ],
      replicas: ['a', 'b'],
      owners: { e1: 'a' },
    },
  ];
  it.each(cases)('$label', ({ heartbeats, replicas, owners: want }) => {
    const view = fleetView(heartbeats, now, ttl);
    expect(view.replicas).toEqual(replicas);
    expect(owners(view)).toEqual(want);
  });
});

describe('checkerChanges', () => {
  const view = (...envoys: ReturnType<typeof envoy>[]) => fleetView([{ replica: 'a', at: now, envoys }], now, ttl);
  const cases: { label: string; previous: FleetView; next: FleetView; add: string[]; remove: string[] }[] = [
    { label: 'nothing changed', previous: view(envoy('e1')), next: view(envoy('e1', 2000)), add: [], remove: [] },
    { label: 'an Envoy joins', previous: view(envoy('e1')), next: view(envoy('e1'), envoy('e2')), add: ['e2'], remove: [] },
    { label: 'an Envoy leaves', previous: view(envoy('e1'), envoy('e2')), next: view(envoy('e2')), add: [], remove: ['e1'] },
    {
      label: 'an Envoy changes its protocols',
      previous: view(envoy('e1', 1, ['http'])),
      next: view(envoy('e1', 1, ['tcp'])),
      add: ['e1'],
      remove: [],
    },
    {
      label: 'an empty list is every protocol',
      previous: view(envoy('e1', 1, [])),
      next: view(envoy('e1', 1, ['tcp', 'http'])),
      add: [],
      remove: [],
    },
  ];
  it.each(cases)('$label', ({ previous, next, add, remove }) => {
    const changes = checkerChanges(previous, next);
    expect(changes.add.map((a) => a.id)).toEqual(add);
    expect(changes.remove).toEqual(remove);
  });
});

describe('one assignment across replicas', () => {
  const heartbeats: ReplicaHeartbeat[] = [
    { replica: 'a', at: now, envoys: Array.from({ length: 10 }, (_, i) => envoy(`a-envoy-${i}`)) },
    { replica: 'b', at: now, envoys: Array.from({ length: 7 }, (_, i) => envoy(`b-envoy-${i}`)) },
  ];
  const assign = (order: ReplicaHeartbeat[]) => {
    const view = fleetView(order, now, ttl);
    const assigner = new Assigner(3);
    const { add } = checkerChanges({ replicas: [], checkers: new Map() }, view);
    assigner.addCheckers(add);
    for (let i = 0; i < 200; i++) assigner.setEndpoint(`10.0.0.${i}:80`, 'http');
    return { view, assigner };
  };

  it('is the same on every replica, whatever order the heartbeats arrive in', () => {
    const one = assign(heartbeats).assigner;
    const other = assign([...heartbeats].reverse()).assigner;
    for (let i = 0; i < 200; i++) expect(other.checkersOf(`10.0.0.${i}:80`)).toEqual(one.checkersOf(`10.0.0.${i}:80`));
    // k checkers per endpoint drawn from the union, not from one replica's Envoys.
    const replicasChecking = new Set(
      Array.from({ length: 200 }, (_, i) => one.checkersOf(`10.0.0.${i}:80`).map((c) => c.split('-')[0])).flat(),
    );
    expect(replicasChecking).toEqual(new Set(['a', 'b']));
  });
});

describe('aggregatorOf', () => {
  const endpoints = Array.from({ length: 3000 }, (_, i) => `10.1.${i >> 8}.${i & 255}:8080`);

  it('has no aggregator without a live replica', () => {
    expect(aggregatorOf('10.0.0.1:80', [])).toBeUndefined();
  });

  it('gives every endpoint one aggregator, spread over the replicas, independent of their order', () => {
    const counts = new Map<string, number>();
    for (const endpoint of endpoints) {
      const owner = aggregatorOf(endpoint, ['r1', 'r2', 'r3']) as string;
      expect(aggregatorOf(endpoint, ['r3', 'r1', 'r2'])).toBe(owner);
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const replica of ['r1', 'r2', 'r3']) expect(counts.get(replica)).toBeGreaterThan(800);
  });

  it('moves only the endpoints of a replica that leaves', () => {
    for (const endpoint of endpoints) {
      const before = aggregatorOf(endpoint, ['r1', 'r2', 'r3']);
      const after = aggregatorOf(endpoint, ['r1', 'r3']);
      if (before !== 'r2') expect(after).toBe(before);
    }
  });
});
