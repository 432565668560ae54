import { parseArgs } from 'node:util';
import { scalingSpec } from '@switchyard/shared';
import { decide, initialDeciderState, type DeciderSettings } from '../src/decider/decider.js';
import { KpaModel, kpaDefaults } from './kpa.js';
import { simulate, type SimulatedScaler, type SimulationResult } from './simulate.js';
import { traces } from './traces.js';

/**
 * Replays load traces through Switchyard's decider and through a reference model of
 * Knative's KPA, both with their default settings and the same simulated instance start-up
 * delay, and prints per trace and scaler the under-provisioning, over-provisioning and time
 * to sufficient capacity. The last line is JSON.
 */

const { values } = parseArgs({
  options: {
    'startup-delay': { type: 'string', default: '5' },
    scale: { type: 'string', default: '1' },
    trace: { type: 'string', multiple: true },
  },
});
const startupDelayS = Number(values['startup-delay']);
const scale = Number(values.scale);

const settings: DeciderSettings = scalingSpec.parse({});
const reportIntervalMs = 1000;

function ours(): SimulatedScaler {
  let state = initialDeciderState(settings.minInstances, 0);
  return {
    onSample(t, concurrency, ready) {
      const now = Math.round(t * 1000);
      const result = decide(settings, state, {
        now,
        ready,
        sample: { ts: now, concurrency, rps: concurrency, windowMs: reportIntervalMs },
      });
      state = result.state;
      return result.decision.desired;
    },
  };
}

function kpa(): SimulatedScaler {
  const model = new KpaModel({ ...kpaDefaults, minScale: settings.minInstances, maxScale: settings.maxInstances });
  return {
    onSample(t, concurrency, ready) {
      model.record(t, concurrency);
      const second = Math.round(t);
      return second % kpaDefaults.tickIntervalS === 0 ? model.scale(second, ready) : undefined;
    },
  };
}

interface TraceResult {
  name: string;
  ours: SimulationResult;
  kpa: SimulationResult;
  /** The benchmark's target: under-provisioning ≤ KPA's while cost ≤ 1.1 × KPA's. */
  target_met: boolean;
}

const selected = traces(scale).filter((t) => values.trace === undefined || values.trace.includes(t.name));
const results: TraceResult[] = selected.map((trace) => {
  const options = { maxConcurrency: settings.maxConcurrency, startupDelayS, initialInstances: settings.minInstances };
  const mine = simulate(trace, ours(), options);
  const theirs = simulate(trace, kpa(), options);
  const targetMet = mine.underprovisioned_rs <= theirs.underprovisioned_rs && mine.overprovisioned_is <= 1.1 * theirs.overprovisioned_is;
  console.log(
    `${trace.name.padEnd(10)} ours: under ${mine.underprovisioned_rs} rs, over ${mine.overprovisioned_is} is, ` +
      `capacity after ${mine.time_to_capacity_s} s | kpa: under ${theirs.underprovisioned_rs} rs, ` +
      `over ${theirs.overprovisioned_is} is, capacity after ${theirs.time_to_capacity_s} s | target ${targetMet ? 'met' : 'MISSED'}`,
  );
  return { name: trace.name, ours: mine, kpa: theirs, target_met: targetMet };
});

console.log(
  JSON.stringify({
    traces: results,
    all_targets_met: results.every((r) => r.target_met),
    startup_delay_s: startupDelayS,
    peak_concurrency: 1000 * scale,
    settings,
  }),
);
