import { describe, expect, it } from 'vitest';
import { scalingSpec } from '@switchyard/shared';
import { decide, initialDeciderState, type Decision, type DeciderSettings, type DeciderState } from '../../src/decider/decider.js';

const defaults: DeciderSettings = scalingSpec.parse({});

/** Drives one revision's decider through time, one load sample per second by default. */
class Stepper {
  state: DeciderState;
  now = 0;
  last: Decision | undefined;
  constructor(
    readonly settings: DeciderSettings,
    public ready: number,
  ) {
    this.state = initialDeciderState(ready, 0);
  }

  /** Feeds `seconds` samples of `concurrency`; the ready count follows each decision at once unless `follow` is false. */
  load(concurrency: number, seconds = 1, options: { follow?: boolean; rps?: number } = {}): Decision {
    for (let i = 0; i < seconds; i++) {
      this.now += 1000;
      this.decideNow({ ts: this.now, concurrency, rps: options.rps ?? concurrency, windowMs: 1000 }, options.follow ?? true);
    }
    return this.last as Decision;
  }

  /** Lets time pass without samples, deciding on a 1 s idle tick. */
  idle(seconds: number): Decision {
    for (let i = 0; i < seconds; i++) {
      this.now += 1000;
      this.decideNow(undefined, true);
    }
    return this.last as Decision;
  }

  private decideNow(sample: Parameters<typeof decide>[2]['sample'], follow: boolean) {
    const result = decide(this.settings, this.state, { now: this.now, ready: this.ready, ...(sample ? { sample } : {}) });
    this.state = result.state;
    this.last = result.decision;
    if (follow) this.ready = result.decision.desired;
  }
}

describe('decide: one decision from a steady history', () => {
  const cases: {
    label: string;
    settings?: Partial<DeciderSettings>;
    concurrency: number;
    ready: number;
    want: Partial<Decision>;
  }[] = [
    { label: 'sizes for the target per instance', concurrency: 350, ready: 5, want: { desired: 5, panic: false, limitedBy: null } },
    { label: 'rounds up', concurrency: 351, ready: 5, want: { desired: 6, limitedBy: null } },
    {
      label: 'per-service target: maxConcurrency × targetUtilization',
      settings: { maxConcurrency: 10, targetUtilization: 0.5 },
      concurrency: 50,
      ready: 10,
      want: { desired: 10, targetPerInstance: 5 },
    },
    { label: 'keeps minInstances at idle', concurrency: 0, ready: 1, want: { desired: 1, limitedBy: 'minInstances' } },
    {
      label: 'raises to minInstances',
      settings: { minInstances: 3 },
      concurrency: 70,
      ready: 3,
      want: { desired: 3, limitedBy: 'minInstances' },
    },
    { label: 'caps at maxInstances', concurrency: 5000, ready: 25, want: { desired: 25, limitedBy: 'maxInstances' } },
    {
      label: 'limits the scale-down per decision',
      concurrency: 70,
      ready: 10,
      want: { desired: 5, limitedBy: 'maxScaleDownRate' },
    },
    {
      label: 'limits the scale-up per decision',
      settings: { maxScaleUpRate: 1.5, panicThreshold: 10 },
      concurrency: 700,
      ready: 4,
      want: { desired: 6, limitedBy: 'maxScaleUpRate' },
    },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const settings = { ...defaults, ...c.settings };
      const stepper = new Stepper(settings, c.ready);
      // A minute of the same load, the ready count held where the case puts it.
      const decision = stepper.load(c.concurrency, 60, { follow: false });
      expect(decision).toMatchObject({ current: c.ready, ...c.want });
      expect(decision.stableConcurrency).toBeCloseTo(c.concurrency, 6);
      expect(decision.panicConcurrency).toBeCloseTo(c.concurrency, 6);
    });
  }

  it('does not change its inputs', () => {
    const state = Object.freeze(initialDeciderState(1, 0));
    const input = Object.freeze({ now: 1000, ready: 1, sample: Object.freeze({ ts: 1000, concurrency: 500, rps: 1, windowMs: 1000 }) });
    const first = decide(defaults, state, input);
    const second = decide(defaults, state, input);
    expect(second).toEqual(first);
    expect(state.points).toEqual([]);
  });

  it('explains each bound it applied', () => {
    const stepper = new Stepper({ ...defaults, maxInstances: 3 }, 1);
    const decision = stepper.load(1000);
    expect(decision.limitedBy).toBe('maxInstances');
    expect(decision.reason).toMatch(/panic: .* → 15; maxInstances → 3/);
  });
});

describe('decide: over time', () => {
  it('panics on a step and sizes on the freshest sample, not on the filling panic window', () => {
    const stepper = new Stepper(defaults, 1);
    stepper.load(10, 120);
    expect(stepper.last).toMatchObject({ desired: 1, panic: false });
    const decision = stepper.load(1000, 1, { follow: false });
    expect(decision.panicConcurrency).toBeCloseTo((5 * 10 + 1000) / 6, 6);
    expect(decision).toMatchObject({ panic: true, desired: 15, current: 1 });
  });

  it('does not panic below the threshold', () => {
    const stepper = new Stepper(defaults, 4);
    stepper.load(280, 120, { follow: false });
    // Panic-window demand of 7 instances against 4 ready is under 2 × 4.
    const decision = stepper.load(490, 6, { follow: false });
    expect(decision.panic).toBe(false);
    expect(decision.desired).toBe(Math.ceil(decision.stableConcurrency / 70));
  });

  it('holds a sustained surge until the stable window has caught up, never scaling down meanwhile', () => {
    const stepper = new Stepper(defaults, 1);
    stepper.load(10, 120);
    stepper.load(1000);
    const desired: number[] = [];
    for (let s = 0; s < 58; s++) {
      const decision = stepper.load(1000);
      expect(decision.panic).toBe(true);
      desired.push(decision.desired);
    }
    expect(Math.min(...desired)).toBe(15);
    // Once the stable window holds only the surge, the panic window shows no more than it.
    stepper.load(1000, 7);
    expect(stepper.last).toMatchObject({ panic: false, desired: 15 });
  });

  it('ends the panic soon after a short spike and then scales down at most by the scale-down rate per decision', () => {
    const stepper = new Stepper(defaults, 2);
    stepper.load(100, 120);
    expect(stepper.last?.desired).toBe(2);
    stepper.load(800, 10);
    expect(stepper.last).toMatchObject({ panic: true, desired: 12 });
    const trail: Decision[] = [];
    for (let s = 0; s < 12; s++) trail.push(stepper.load(100));
    const firstCalm = trail.findIndex((d) => !d.panic);
    // No decrease while panicking; the panic ends within a panic window or two, not a stable window.
    expect(trail.slice(0, firstCalm).every((d) => d.desired === 12)).toBe(true);
    expect(firstCalm).toBeGreaterThan(0);
    expect(firstCalm).toBeLessThan(12);
    const calm = trail.slice(firstCalm);
    for (let i = 1; i < calm.length; i++) {
      expect((calm[i] as Decision).desired).toBeGreaterThanOrEqual(Math.floor((calm[i - 1] as Decision).desired / 2));
    }
    // The stable window still remembers the spike (10 s of 800 in 60 s).
    expect(calm.at(-1)?.desired).toBe(Math.ceil((10 * 800 + 50 * 100) / 60 / 70));
  });

  it('delays scale-down by the highest recommendation of the delay window', () => {
    const stepper = new Stepper({ ...defaults, scaleDownDelay: 30_000 }, 10);
    stepper.load(700, 120);
    expect(stepper.last?.desired).toBe(10);
    stepper.load(70, 29);
    expect(stepper.last).toMatchObject({ desired: 10, limitedBy: 'scaleDownDelay' });
    stepper.load(70, 120);
    expect(stepper.last?.desired).toBe(1);
  });

  it('scales to zero after the grace period once a stable window passed without load, and wakes on requests', () => {
    const settings = { ...defaults, minInstances: 0, scaleToZeroGrace: 30_000 };
    const stepper = new Stepper(settings, 1);
    stepper.load(20, 60);
    expect(stepper.last?.desired).toBe(1);
    // The stable window must empty out first, then the grace runs.
    stepper.load(0, 60);
    expect(stepper.last).toMatchObject({ desired: 1, limitedBy: 'scaleToZeroGrace' });
    stepper.load(0, 30);
    expect(stepper.last?.desired).toBe(0);
    stepper.load(0, 10, { rps: 0 });
    expect(stepper.last?.desired).toBe(0);
    // At zero instances Envoy fails requests at once: they show as a rate, not as concurrency.
    const woken = stepper.load(0, 1, { rps: 3 });
    expect(woken).toMatchObject({ desired: 1, current: 0 });
  });

  it('decays to the minimum when load reports stop', () => {
    const stepper = new Stepper(defaults, 8);
    stepper.load(560, 120);
    expect(stepper.last?.desired).toBe(8);
    stepper.idle(120);
    expect(stepper.last).toMatchObject({ desired: 1, stableConcurrency: 0 });
  });

  it('starts in panic when resuming above one instance without history, so it does not scale down blind', () => {
    const stepper = new Stepper(defaults, 6);
    const early = stepper.load(70, 30);
    expect(early).toMatchObject({ desired: 6, panic: true, limitedBy: 'panic' });
    stepper.load(70, 40);
    expect(stepper.last?.desired).toBeLessThan(6);
  });

  describe('requests held by the activator count as concurrency', () => {
    const zero = { ...defaults, minInstances: 0, maxConcurrency: 10 };
    const cases: { label: string; settings: DeciderSettings; ready: number; held: number; sample?: number; want: number }[] = [
      { label: '50 held, maxConcurrency 10 at 70 %: 8 from zero', settings: zero, ready: 0, held: 50, want: 8 },
      { label: '50 held at 100 % utilization: exactly 5', settings: { ...zero, targetUtilization: 1 }, ready: 0, held: 50, want: 5 },
      { label: 'one held request wakes the revision', settings: zero, ready: 0, held: 1, want: 1 },
      { label: 'held capped by maxInstances', settings: { ...zero, maxInstances: 3 }, ready: 0, held: 50, want: 3 },
      { label: 'a higher load sample wins over fewer held', settings: zero, ready: 0, held: 7, sample: 70, want: 10 },
      { label: 'nothing held, no load: stays at zero', settings: zero, ready: 0, held: 0, want: 0 },
    ];
    for (const c of cases) {
      it(c.label, () => {
        const sample = c.sample === undefined ? {} : { sample: { ts: 1000, concurrency: c.sample, rps: c.sample, windowMs: 1000 } };
        const { decision } = decide(c.settings, initialDeciderState(0, 0), { now: 1000, ready: c.ready, held: c.held, ...sample });
        expect(decision.desired).toBe(c.want);
      });
    }
  });
});
