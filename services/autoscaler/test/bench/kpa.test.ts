import { describe, expect, it } from 'vitest';
import { KpaModel } from '../../bench/kpa.js';
import { simulate } from '../../bench/simulate.js';
import { traces, type Trace } from '../../bench/traces.js';

describe('KPA reference model', () => {
  it('averages 1 s buckets over the window, or since the first scrape when shorter', () => {
    const kpa = new KpaModel();
    for (let t = 0; t < 120; t++) kpa.record(t, 140);
    expect(kpa.scale(120, 2)).toBe(2);
    const fresh = new KpaModel();
    fresh.record(0, 700);
    expect(fresh.scale(0, 10)).toBe(10);
  });

  it('panics at 200 % of ready pods and holds the panic peak for a stable window', () => {
    const kpa = new KpaModel();
    for (let t = 0; t < 60; t++) kpa.record(t, 70);
    expect(kpa.scale(59, 1)).toBe(1);
    for (let t = 60; t < 63; t++) kpa.record(t, 1000);
    // Panic window: 3 × 70 + 3 × 1000 over 6 s → 535 → 8 pods.
    expect(kpa.scale(62, 1)).toBe(8);
    for (let t = 63; t < 70; t++) kpa.record(t, 70);
    expect(kpa.scale(69, 8)).toBe(8);
    for (let t = 70; t < 123; t++) kpa.record(t, 70);
    expect(kpa.scale(122, 8)).toBe(8);
    kpa.record(123, 70);
    // Over a stable window since the last crossing: stable mode again, at most halving.
    expect(kpa.scale(123, 8)).toBe(4);
  });

  it('limits the scale-down to half the ready pods and clamps to min/max scale', () => {
    const kpa = new KpaModel();
    for (let t = 0; t < 60; t++) kpa.record(t, 0);
    expect(kpa.scale(59, 10)).toBe(5);
    const capped = new KpaModel({ ...new KpaModel().settings, maxScale: 3 });
    for (let t = 0; t < 60; t++) capped.record(t, 700);
    expect(capped.scale(59, 3)).toBe(3);
  });
});

describe('simulation', () => {
  const step: Trace = { name: 'step', durationS: 60, demand: (t) => (t < 10 ? 0 : 500) };

  it('counts under-provisioning until new instances are ready, and the time to capacity', () => {
    // A scaler that asks for 5 instances as soon as it sees the load.
    const result = simulate(
      step,
      { onSample: (_t, concurrency) => (concurrency > 0 ? 5 : 1) },
      {
        maxConcurrency: 100,
        startupDelayS: 5,
        initialInstances: 1,
      },
    );
    // Demand 500 against 1 ready instance from t=10 until the report at t=11 plus 5 s start-up.
    expect(result.underprovisioned_rs).toBeCloseTo(400 * 6, 0);
    expect(result.time_to_capacity_s).toBeCloseTo(6, 5);
    expect(result.max_instances).toBe(5);
    // The one instance idles for the first 10 s; afterwards the demand needs all of them.
    expect(result.overprovisioned_is).toBeCloseTo(10, 5);
  });

  it('counts instances above what the demand needs, starting ones included', () => {
    const flat: Trace = { name: 'flat', durationS: 10, demand: () => 100 };
    const result = simulate(flat, { onSample: () => 3 }, { maxConcurrency: 100, startupDelayS: 5, initialInstances: 1 });
    // 2 extra instances from t=1 on.
    expect(result.overprovisioned_is).toBeCloseTo(18, 5);
    expect(result.underprovisioned_rs).toBe(0);
  });

  it('replays the same traces every run', () => {
    const first = traces().map((t) => [0, 100, 1234.5].map((s) => t.demand(s)));
    const second = traces().map((t) => [0, 100, 1234.5].map((s) => t.demand(s)));
    expect(first).toEqual(second);
    expect(traces().map((t) => t.name)).toEqual(['step', 'spike', 'sawtooth', 'slow-ramp', 'diurnal']);
  });
});
