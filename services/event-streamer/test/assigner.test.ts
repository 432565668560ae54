import { describe, expect, it } from 'vitest';
import { Assigner, type CheckProtocol } from '../src/assigner.js';

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function snapshot(assigner: Assigner, endpoints: string[]): Map<string, string[]> {
  return new Map(endpoints.map((e) => [e, [...assigner.checkersOf(e)]]));
}

function build(
  checkers: string[],
  endpoints: string[],
  k: number,
  order: 'checkers-first' | 'endpoints-first' = 'checkers-first',
): Assigner {
  const assigner = new Assigner(k);
  if (order === 'checkers-first') {
    checkers.forEach((c) => assigner.addChecker(c, []));
    endpoints.forEach((e) => assigner.setEndpoint(e, 'http'));
  } else {
    endpoints.forEach((e) => assigner.setEndpoint(e, 'http'));
    checkers.forEach((c) => assigner.addChecker(c, []));
  }
  return assigner;
}

describe('Assigner (rendezvous hashing)', () => {
  const endpoints = ids('sy_acme_api_blue|10.0.0.', 600);

  it.each([
    { label: 'more checkers than k', checkers: 10, k: 3, want: 3 },
    { label: 'exactly k checkers', checkers: 3, k: 3, want: 3 },
    { label: 'fewer checkers than k: every checker', checkers: 2, k: 3, want: 2 },
    { label: 'one checker', checkers: 1, k: 3, want: 1 },
    { label: 'k = 1', checkers: 8, k: 1, want: 1 },
    { label: 'no checker: unassigned', checkers: 0, k: 3, want: 0 },
  ])('assigns min(k, N) distinct checkers per endpoint: $label', ({ checkers, k, want }) => {
    const assigner = build(ids('envoy-', checkers), endpoints, k);
    for (const e of endpoints) {
      const assigned = assigner.checkersOf(e);
      expect(assigned).toHaveLength(want);
      expect(new Set(assigned).size).toBe(want);
    }
  });

  it('reaches the same assignment whatever the order of arrivals', () => {
    const checkers = ids('envoy-', 12);
    const a = build(checkers, endpoints, 3, 'checkers-first');
    const b = build([...checkers].reverse(), [...endpoints].reverse(), 3, 'endpoints-first');
    expect(snapshot(b, endpoints)).toEqual(snapshot(a, endpoints));
  });

  it('gives a burst of joins applied in one pass the same assignment as one by one', () => {
    const checkers = ids('envoy-', 12);
    const [first, burstJoins] = [checkers.slice(0, 4), checkers.slice(4)];
    const sequential = build(first, endpoints, 3);
    burstJoins.forEach((c) => sequential.addChecker(c, []));
    const burst = build(first, endpoints, 3);
    const held = (c: string) => [...burst.endpointsOf(c)].sort().join();
    const before = new Map(first.map((c) => [c, held(c)]));
    burst.takeChanges();
    burst.addCheckers(burstJoins.map((id) => ({ id, protocols: [] })));
    expect(snapshot(burst, endpoints)).toEqual(snapshot(sequential, endpoints));
    // Exactly the newcomers and the checkers that lost endpoints need a new specifier.
    const changed = first.filter((c) => before.get(c) !== held(c));
    expect([...burst.takeChanges().checkers].sort()).toEqual([...burstJoins, ...changed].sort());
  });

  it('spreads the load evenly', () => {
    const assigner = build(ids('envoy-', 10), ids('ep-', 3000), 3);
    const loads = ids('envoy-', 10).map((c) => assigner.endpointsOf(c).size);
    expect(loads.reduce((a, b) => a + b, 0)).toBe(9000);
    for (const load of loads) expect(Math.abs(load - 900)).toBeLessThan(900 * 0.15);
  });

  it.each([
    { label: 'one of 10 leaves', start: 10, leave: 1, join: 0 },
    { label: 'three of 10 leave at once', start: 10, leave: 3, join: 0 },
    { label: 'one joins 10', start: 10, leave: 0, join: 1 },
    { label: 'two join 4', start: 4, leave: 0, join: 2 },
    { label: 'down to 2 (< k)', start: 5, leave: 3, join: 0 },
  ])('rebalances with the fewest moves and matches a fresh computation: $label', ({ start, leave, join }) => {
    const initial = ids('envoy-', start);
    const assigner = build(initial, endpoints, 3);
    const before = snapshot(assigner, endpoints);
    assigner.takeChanges();
    const leaving = initial.slice(0, leave);
    const joining = ids('new-', join);
    assigner.removeCheckers(leaving);
    joining.forEach((c) => assigner.addChecker(c, []));
    const after = snapshot(assigner, endpoints);
    const final = [...initial.slice(leave), ...joining];
    expect(after).toEqual(snapshot(build(final, endpoints, 3), endpoints));

    // Every change involves a checker that left or joined; nothing else moves.
    const changes = assigner.takeChanges();
    for (const e of endpoints) {
      const was = before.get(e) as string[];
      const now = after.get(e) as string[];
      const dropped = was.filter((c) => !now.includes(c));
      const added = now.filter((c) => !was.includes(c));
      for (const c of dropped) {
        if (!leaving.includes(c)) expect(added.some((a) => joining.includes(a))).toBe(true);
      }
      if (dropped.length === 0 && added.length === 0) expect(changes.endpoints.has(e)).toBe(false);
      else expect(changes.endpoints.has(e)).toBe(true);
    }
    for (const c of leaving) expect(changes.checkers.has(c)).toBe(true);
    for (const c of joining) expect(changes.checkers.has(c)).toBe(true);
  });

  it('never leaves an endpoint unassigned while a checker is connected', () => {
    const checkers = ids('envoy-', 6);
    const assigner = build(checkers, endpoints, 3);
    for (let i = 0; i < checkers.length - 1; i++) {
      assigner.removeCheckers([checkers[i] as string]);
      for (const e of endpoints) expect(assigner.checkersOf(e).length).toBe(Math.min(3, checkers.length - 1 - i));
    }
  });

  it('moves about k/N of the endpoints when one of N checkers leaves', () => {
    const many = ids('ep-', 5000);
    const assigner = build(ids('envoy-', 20), many, 3);
    assigner.takeChanges();
    assigner.removeCheckers(['envoy-7']);
    const moved = assigner.takeChanges().endpoints.size / many.length;
    expect(moved).toBeGreaterThan(0.1);
    expect(moved).toBeLessThan(0.2);
  });

  it.each<{ label: string; protocol: CheckProtocol; checkers: [string, CheckProtocol[]][]; want: string[] }>([
    {
      label: 'http endpoint skips a tcp-only checker',
      protocol: 'http',
      checkers: [
        ['tcp-only', ['tcp']],
        ['both', ['http', 'tcp']],
      ],
      want: ['both'],
    },
    {
      label: 'tcp endpoint skips an http-only checker',
      protocol: 'tcp',
      checkers: [
        ['http-only', ['http']],
        ['both', []],
      ],
      want: ['both'],
    },
    { label: 'no capable checker: unassigned', protocol: 'http', checkers: [['tcp-only', ['tcp']]], want: [] },
  ])('respects capabilities: $label', ({ protocol, checkers, want }) => {
    const assigner = new Assigner(3);
    for (const [id, protocols] of checkers) assigner.addChecker(id, protocols);
    assigner.setEndpoint('ep', protocol);
    expect([...assigner.checkersOf('ep')].sort()).toEqual(want);
  });

  it('keeps the assignment of a checker that reconnects with the same capabilities', () => {
    const assigner = build(ids('envoy-', 5), endpoints, 3);
    const before = snapshot(assigner, endpoints);
    assigner.takeChanges();
    assigner.addChecker('envoy-2', []);
    const changes = assigner.takeChanges();
    expect(snapshot(assigner, endpoints)).toEqual(before);
    expect([...changes.checkers]).toEqual(['envoy-2']);
    expect(changes.endpoints.size).toBe(0);
  });

  it('frees a removed endpoint and reassigns one whose protocol changed', () => {
    const assigner = new Assigner(2);
    assigner.addChecker('a', ['http']);
    assigner.addChecker('b', ['tcp']);
    assigner.addChecker('c', []);
    assigner.setEndpoint('ep', 'http');
    expect([...assigner.checkersOf('ep')].sort()).toEqual(['a', 'c']);
    assigner.setEndpoint('ep', 'tcp');
    expect([...assigner.checkersOf('ep')].sort()).toEqual(['b', 'c']);
    assigner.removeEndpoint('ep');
    expect(assigner.endpointsOf('b').size + assigner.endpointsOf('c').size).toBe(0);
    expect(assigner.hasEndpoint('ep')).toBe(false);
  });
});
