import { describe, expect, it } from 'vitest';
import { Aggregator, type HealthState, type TrackedEndpoint, type Vote } from '../src/health-votes.js';

const endpoint: TrackedEndpoint = {
  key: 'sy_acme_api_blue|10.0.0.1|8080',
  ref: { tenant: 'acme', service: 'api', revision: 'blue' },
  address: '10.0.0.1',
  port: 8080,
  id: 'i-1',
  startedAt: 0,
  gracePeriodMs: 0,
};

type Step =
  | { at: number; report: [checker: string, vote: Vote | 'abstain']; want?: HealthState; outcome?: string }
  | { at: number; tick: true; want?: HealthState }
  | { at: number; checkers: string[] }
  | { at: number; aggregatedHere: boolean }
  | { at: number; observe: HealthState; want?: HealthState };

interface Case {
  label: string;
  grace?: number;
  initial?: HealthState;
  checkers?: string[];
  steps: Step[];
  /** Every transition as "previous>state", in order. */
  transitions: string[];
}

const stale = 3000;

function run(c: Case) {
  const aggregator = new Aggregator({ staleAfterMs: stale });
  aggregator.track({ ...endpoint, gracePeriodMs: c.grace ?? 0 }, 0, c.initial);
  aggregator.setCheckers(endpoint.key, c.checkers ?? ['a', 'b', 'c'], 0);
  const transitions: string[] = [];
  const reasons: string[] = [];
  for (const step of c.steps) {
    if ('report' in step) {
      const result = aggregator.report(endpoint.key, step.report[0], step.report[1], step.at);
      if (step.outcome !== undefined) expect(result.outcome, `report at ${step.at}`).toBe(step.outcome);
      if (result.transition) {
        transitions.push(`${result.transition.previous}>${result.transition.state}`);
        reasons.push(result.transition.reason);
      }
    } else if ('tick' in step) {
      for (const t of aggregator.tick(step.at)) {
        transitions.push(`${t.previous}>${t.state}`);
        reasons.push(t.reason);
      }
    } else if ('checkers' in step) {
      aggregator.setCheckers(endpoint.key, step.checkers, step.at);
    } else if ('aggregatedHere' in step) {
      aggregator.setAggregatedHere(endpoint.key, step.aggregatedHere, step.at);
    } else {
      aggregator.observe(endpoint.key, step.observe);
    }
    if ('want' in step && step.want !== undefined) expect(aggregator.stateOf(endpoint.key), `state at ${step.at}`).toBe(step.want);
  }
  return { transitions, reasons };
}

describe('Aggregator', () => {
  const cases: Case[] = [
    {
      label: 'aggregated by another replica: votes refused, nothing published, the published state followed',
      steps: [
        { at: 0, aggregatedHere: false },
        { at: 100, report: ['a', 'healthy'], outcome: 'not_aggregated_here' },
        { at: 5000, tick: true, want: 'unknown' },
        { at: 5100, observe: 'healthy', want: 'healthy' },
        { at: 20_000, tick: true, want: 'healthy' },
      ],
      transitions: [],
    },
    {
      label: 'taking over keeps the followed state and starts the silence clock afresh',
      steps: [
        { at: 0, aggregatedHere: false },
        { at: 100, observe: 'healthy' },
        { at: 10_000, aggregatedHere: true },
        { at: 10_100, tick: true, want: 'healthy' },
        { at: 10_200, report: ['a', 'healthy'] },
        { at: 10_300, report: ['b', 'healthy'], want: 'healthy' },
        { at: 10_400, report: ['c', 'unhealthy'], want: 'healthy' },
      ],
      transitions: [],
    },
    {
      label: 'taken over and then silent: unknown after the staleness timeout, counted from the takeover',
      steps: [
        { at: 0, aggregatedHere: false },
        { at: 100, observe: 'healthy' },
        { at: 10_000, aggregatedHere: true },
        { at: 12_900, tick: true, want: 'healthy' },
        { at: 13_100, tick: true, want: 'unknown' },
      ],
      transitions: ['healthy>unknown'],
    },
    {
      label: 'the state published by this replica itself is not overridden by its echo',
      steps: [
        { at: 100, report: ['a', 'healthy'] },
        { at: 200, report: ['b', 'healthy'], want: 'healthy' },
        { at: 300, observe: 'unhealthy', want: 'healthy' },
      ],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'giving an endpoint up drops the votes held for it',
      steps: [
        { at: 100, report: ['a', 'healthy'] },
        { at: 200, aggregatedHere: false },
        { at: 300, aggregatedHere: true },
        { at: 400, report: ['b', 'healthy'], want: 'unknown' },
        { at: 500, report: ['c', 'healthy'], want: 'healthy' },
      ],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'one healthy vote of one checker is a majority',
      checkers: ['a'],
      steps: [{ at: 100, report: ['a', 'healthy'], want: 'healthy' }],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'the first result alone does not decide for three checkers',
      steps: [
        { at: 100, report: ['a', 'healthy'], want: 'unknown' },
        { at: 200, report: ['b', 'healthy'], want: 'healthy' },
      ],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'a majority decides either way',
      steps: [
        { at: 100, report: ['a', 'healthy'] },
        { at: 100, report: ['b', 'healthy'], want: 'healthy' },
        { at: 200, report: ['c', 'unhealthy'], want: 'healthy' },
        { at: 300, report: ['b', 'unhealthy'], want: 'unhealthy' },
      ],
      transitions: ['unknown>healthy', 'healthy>unhealthy'],
    },
    {
      label: 'a tie keeps the current state',
      checkers: ['a', 'b'],
      steps: [
        { at: 100, report: ['a', 'unhealthy'], want: 'unknown' },
        { at: 100, report: ['b', 'unhealthy'], want: 'unhealthy' },
        { at: 200, report: ['b', 'healthy'], want: 'unhealthy' },
      ],
      transitions: ['unknown>unhealthy'],
    },
    {
      label: 'repeated identical reports publish nothing more',
      steps: [
        { at: 100, report: ['a', 'healthy'] },
        { at: 1100, report: ['b', 'healthy'] },
        { at: 1200, report: ['c', 'healthy'] },
        { at: 2100, report: ['a', 'healthy'], want: 'healthy' },
      ],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'a checker that stopped reporting does not vote',
      steps: [
        { at: 100, report: ['a', 'unhealthy'] },
        { at: 100, report: ['b', 'unhealthy'], want: 'unhealthy' },
        { at: 3000, report: ['c', 'healthy'], want: 'unhealthy' },
        { at: 3101, tick: true, want: 'healthy' },
      ],
      transitions: ['unknown>unhealthy', 'unhealthy>healthy'],
    },
    {
      label: 'no vote for the stale window makes it unknown',
      checkers: ['a'],
      steps: [
        { at: 100, report: ['a', 'healthy'], want: 'healthy' },
        { at: 3100, tick: true, want: 'healthy' },
        { at: 3101, tick: true, want: 'unknown' },
      ],
      transitions: ['unknown>healthy', 'healthy>unknown'],
    },
    {
      label: 'results from a checker not assigned are refused',
      checkers: ['a'],
      steps: [{ at: 100, report: ['z', 'unhealthy'], outcome: 'not_assigned', want: 'unknown' }],
      transitions: [],
    },
    {
      label: 'reassignment drops the votes of checkers no longer assigned',
      steps: [
        { at: 100, report: ['a', 'unhealthy'] },
        { at: 100, report: ['b', 'unhealthy'], want: 'unhealthy' },
        { at: 200, checkers: ['c', 'd'] },
        { at: 300, report: ['c', 'healthy'], want: 'unhealthy' },
        { at: 400, report: ['d', 'healthy'], want: 'healthy' },
      ],
      transitions: ['unknown>unhealthy', 'unhealthy>healthy'],
    },
    {
      label: 'an abstaining checker withdraws its vote',
      steps: [
        { at: 3100, report: ['a', 'unhealthy'] },
        { at: 3100, report: ['b', 'healthy'] },
        { at: 3100, report: ['c', 'unhealthy'], want: 'unhealthy' },
        { at: 3200, report: ['c', 'abstain'], want: 'unhealthy' },
        { at: 3300, report: ['a', 'abstain'], want: 'healthy' },
      ],
      transitions: ['unknown>unhealthy', 'unhealthy>healthy'],
    },
    {
      label: 'grace period: failing checks of a starting instance do not mark it unhealthy',
      grace: 10_000,
      steps: [
        { at: 1000, report: ['a', 'unhealthy'] },
        { at: 1000, report: ['b', 'unhealthy'] },
        { at: 1000, report: ['c', 'unhealthy'], want: 'unknown' },
        { at: 9000, report: ['a', 'unhealthy'] },
        { at: 9000, report: ['b', 'unhealthy'] },
        { at: 9000, report: ['c', 'unhealthy'], want: 'unknown' },
        { at: 10_000, report: ['a', 'unhealthy'], want: 'unhealthy' },
      ],
      transitions: ['unknown>unhealthy'],
    },
    {
      label: 'grace period: healthy results count at once',
      grace: 10_000,
      steps: [
        { at: 1000, report: ['a', 'unhealthy'] },
        { at: 2000, report: ['b', 'healthy'] },
        { at: 2000, report: ['c', 'healthy'], want: 'healthy' },
        { at: 2500, report: ['b', 'unhealthy'], want: 'healthy' },
        { at: 4999, tick: true, want: 'healthy' },
      ],
      transitions: ['unknown>healthy'],
    },
    {
      label: 'grace period ends on a tick without new results',
      grace: 5000,
      checkers: ['a', 'b'],
      steps: [
        { at: 3000, report: ['a', 'unhealthy'] },
        { at: 3000, report: ['b', 'unhealthy'], want: 'unknown' },
        { at: 4999, tick: true, want: 'unknown' },
        { at: 5000, tick: true, want: 'unhealthy' },
      ],
      transitions: ['unknown>unhealthy'],
    },
    {
      label: 'a recovered state is the previous state of the first transition',
      initial: 'unhealthy',
      checkers: ['a'],
      steps: [{ at: 100, report: ['a', 'healthy'], want: 'healthy' }],
      transitions: ['unhealthy>healthy'],
    },
  ];

  it.each(cases)('$label', (c) => {
    expect(run(c).transitions).toEqual(c.transitions);
  });

  it('describes each transition with its reason and the votes that made it', () => {
    const aggregator = new Aggregator({ staleAfterMs: stale });
    aggregator.track(endpoint, 0);
    aggregator.setCheckers(endpoint.key, ['a', 'b', 'c'], 0);
    aggregator.report(endpoint.key, 'a', 'unhealthy', 10);
    const { transition } = aggregator.report(endpoint.key, 'b', 'unhealthy', 20);
    expect(transition).toEqual({
      schemaVersion: 1,
      tenant: 'acme',
      service: 'api',
      revision: 'blue',
      endpoint: { address: '10.0.0.1', port: 8080, id: 'i-1' },
      state: 'unhealthy',
      previous: 'unknown',
      reason: '2 of 3 checkers report unhealthy',
      votes: [
        { checker: 'a', state: 'unhealthy', ts: 10 },
        { checker: 'b', state: 'unhealthy', ts: 20 },
      ],
      ts: 20,
    });
    expect(aggregator.tick(3015)).toEqual([]);
    const [gone] = aggregator.tick(3100);
    expect(gone?.reason).toBe('no assigned checker reported for 3000 ms');
  });

  it('refuses results for endpoints it does not track', () => {
    const aggregator = new Aggregator({ staleAfterMs: stale });
    expect(aggregator.report('nope', 'a', 'healthy', 1)).toEqual({ outcome: 'unknown_endpoint' });
  });
});
