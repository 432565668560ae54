import { describe, expect, it } from 'vitest';
import type { DeploymentRecord } from '@switchyard/shared';
import { planDeployment, splitWith, type RevisionObservation } from '../../src/deployment/planner.js';

const t0 = 1_000_000;

function deployment(overrides: Partial<DeploymentRecord> = {}): DeploymentRecord {
  return {
    schemaVersion: 1,
    id: 'd1',
    tenant: 'acme',
    service: 'api',
    revision: 'green',
    previousRevision: 'blue',
    previousTraffic: [{ revision: 'blue', percent: 100 }],
    strategy: 'canary',
    steps: [10, 50, 100],
    bakeMs: 30_000,
    maxErrorRatio: 0.05,
    phase: 'scaling',
    stepIndex: -1,
    startedAt: t0,
    phaseSince: t0,
    message: '',
    ...overrides,
  };
}

const healthy: RevisionObservation = { healthyInstances: 2, unhealthyInstances: 0, requiredInstances: 2, errorRatio: 0, notRunnable: null };

describe('planDeployment', () => {
  it.each([
    {
      label: 'waits while the new revision is not healthy',
      d: deployment(),
      obs: { ...healthy, healthyInstances: 1 },
      now: t0 + 1000,
      phase: 'scaling',
      traffic: undefined,
    },
    {
      label: 'shifts the first canary step once healthy',
      d: deployment(),
      obs: healthy,
      now: t0 + 1000,
      phase: 'baking',
      traffic: [
        { revision: 'green', percent: 10 },
        { revision: 'blue', percent: 90 },
      ],
    },
    {
      label: 'fails at once when the provider cannot run the revision, traffic untouched',
      d: deployment(),
      obs: { ...healthy, healthyInstances: 0, notRunnable: 'the configured instance provider "local" runs no images' },
      now: t0 + 1,
      phase: 'failed',
      traffic: undefined,
    },
    {
      label: 'gives up when never healthy, traffic untouched',
      d: deployment(),
      obs: { ...healthy, healthyInstances: 0 },
      now: t0 + 300_000,
      phase: 'failed',
      traffic: undefined,
    },
    {
      label: 'keeps baking before the bake time',
      d: deployment({ phase: 'baking', stepIndex: 0 }),
      obs: healthy,
      now: t0 + 29_999,
      phase: 'baking',
      traffic: undefined,
    },
    {
      label: 'takes the next step after the bake',
      d: deployment({ phase: 'baking', stepIndex: 0 }),
      obs: healthy,
      now: t0 + 30_000,
      phase: 'baking',
      traffic: [
        { revision: 'green', percent: 50 },
        { revision: 'blue', percent: 50 },
      ],
    },
    {
      label: 'completes after baking at 100 %',
      d: deployment({ phase: 'baking', stepIndex: 2 }),
      obs: healthy,
      now: t0 + 30_000,
      phase: 'completed',
      traffic: undefined,
    },
    {
      label: 'rolls back on a 5xx ratio above the limit',
      d: deployment({ phase: 'baking', stepIndex: 1 }),
      obs: { ...healthy, errorRatio: 0.2 },
      now: t0 + 1000,
      phase: 'rolled_back',
      traffic: [{ revision: 'blue', percent: 100 }],
    },
    {
      label: 'rolls back when no instance is healthy',
      d: deployment({ phase: 'baking', stepIndex: 0 }),
      obs: { ...healthy, healthyInstances: 0, unhealthyInstances: 2 },
      now: t0 + 1000,
      phase: 'rolled_back',
      traffic: [{ revision: 'blue', percent: 100 }],
    },
    {
      label: 'tolerates an error ratio at the limit',
      d: deployment({ phase: 'baking', stepIndex: 0 }),
      obs: { ...healthy, errorRatio: 0.05 },
      now: t0 + 1000,
      phase: 'baking',
      traffic: undefined,
    },
    {
      label: 'does nothing once finished',
      d: deployment({ phase: 'completed', stepIndex: 2 }),
      obs: { ...healthy, errorRatio: 1 },
      now: t0 + 1000,
      phase: 'completed',
      traffic: undefined,
    },
    {
      label: 'blue-green shifts everything at once',
      d: deployment({ strategy: 'blue-green', steps: [100] }),
      obs: healthy,
      now: t0,
      phase: 'baking',
      traffic: [{ revision: 'green', percent: 100 }],
    },
  ])('$label', ({ d, obs, now, phase, traffic }) => {
    const step = planDeployment(d, obs, now);
    expect(step.deployment.phase).toBe(phase);
    expect(step.traffic).toEqual(traffic);
    expect(step.changed).toBe(phase !== d.phase || traffic !== undefined);
  });

  it('walks a whole canary from scaling to completed with an injected clock', () => {
    let d = deployment();
    const phases: string[] = [];
    for (let now = t0; now <= t0 + 200_000 && d.phase !== 'completed'; now += 5000) {
      const step = planDeployment(d, healthy, now);
      if (step.changed) phases.push(`${step.deployment.phase}:${step.deployment.stepIndex}`);
      d = step.deployment;
    }
    expect(phases).toEqual(['baking:0', 'baking:1', 'baking:2', 'completed:2']);
  });
});

describe('splitWith', () => {
  it.each([
    {
      previous: [{ revision: 'blue', percent: 100 }],
      percent: 10,
      want: [
        { revision: 'green', percent: 10 },
        { revision: 'blue', percent: 90 },
      ],
    },
    {
      previous: [
        { revision: 'a', percent: 80 },
        { revision: 'b', percent: 20 },
      ],
      percent: 50,
      want: [
        { revision: 'green', percent: 50 },
        { revision: 'a', percent: 40 },
        { revision: 'b', percent: 10 },
      ],
    },
    {
      previous: [
        { revision: 'a', percent: 33 },
        { revision: 'b', percent: 67 },
      ],
      percent: 10,
      want: [
        { revision: 'green', percent: 10 },
        { revision: 'a', percent: 29 },
        { revision: 'b', percent: 61 },
      ],
    },
    { previous: [{ revision: 'green', percent: 100 }], percent: 10, want: [{ revision: 'green', percent: 100 }] },
    { previous: [{ revision: 'blue', percent: 100 }], percent: 100, want: [{ revision: 'green', percent: 100 }] },
  ])('gives $percent% to green from $previous', ({ previous, percent, want }) => {
    const split = splitWith(previous, 'green', percent);
    expect(split).toEqual(want);
    expect(split.reduce((s, e) => s + e.percent, 0)).toBe(100);
  });
});
