/**
 * A reference model of Knative's Pod Autoscaler (KPA), written from its documented algorithm
 * with its published defaults, for the simulation benchmark:
 * - concurrency is scraped once a second into 1 s buckets; the stable (60 s) and panic (6 s)
 *   values are bucket averages over the window, or over the time since the first scrape when
 *   that is shorter, and 0 once nothing was recorded for a whole window;
 * - a decision every 2 s tick: desired = ceil(value / target) with target = container
 *   concurrency 100 × target utilization 70 %, kept within [floor(ready / 2), ceil(1000 × ready)]
 *   (max scale-down rate 2, max scale-up rate 1000, ready counted as at least 1);
 * - panic when ceil(panic / target) / ready ≥ 2 (panic threshold 200 %); while panicking the
 *   larger of the stable and panic recommendations is used and the count never decreases; panic
 *   ends once the threshold has not been crossed for a stable window;
 * - the result is clamped to the revision's min/max scale.
 */

export interface KpaSettings {
  targetPerInstance: number;
  stableWindowS: number;
  panicWindowS: number;
  panicThreshold: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  minScale: number;
  maxScale: number;
  tickIntervalS: number;
}

export const kpaDefaults: KpaSettings = {
  targetPerInstance: 100 * 0.7,
  stableWindowS: 60,
  panicWindowS: 6,
  panicThreshold: 2,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  minScale: 1,
  maxScale: 25,
  tickIntervalS: 2,
};

export class KpaModel {
  /** Sum and count per whole second. */
  private readonly buckets = new Map<number, { sum: number; count: number }>();
  private firstWrite: number | undefined;
  private lastWrite: number | undefined;
  private panicSince: number | undefined;
  private maxPanicPods = 0;

  constructor(readonly settings: KpaSettings = kpaDefaults) {}

  /** A scrape at time `t` (seconds). */
  record(t: number, concurrency: number): void {
    const second = Math.floor(t);
    const bucket = this.buckets.get(second) ?? { sum: 0, count: 0 };
    bucket.sum += concurrency;
    bucket.count += 1;
    this.buckets.set(second, bucket);
    this.firstWrite ??= second;
    this.lastWrite = second;
    for (const key of this.buckets.keys()) if (key <= second - this.settings.stableWindowS) this.buckets.delete(key);
  }

  private windowAverage(now: number, windowS: number): number {
    if (this.firstWrite === undefined || this.lastWrite === undefined) return 0;
    const second = Math.floor(now);
    if (second - this.lastWrite >= windowS) return 0;
    let total = 0;
    for (let s = second - windowS + 1; s <= second; s++) {
      const bucket = this.buckets.get(s);
      if (bucket !== undefined) total += bucket.sum / bucket.count;
    }
    const length = Math.min(second - this.firstWrite + 1, windowS);
    return total / length;
  }

  /** The decision at tick time `now` (seconds) with `readyPods` ready. */
  scale(now: number, readyPods: number): number {
    const s = this.settings;
    const ready = Math.max(1, readyPods);
    const stable = this.windowAverage(now, s.stableWindowS);
    const panicValue = this.windowAverage(now, s.panicWindowS);
    const maxUp = Math.ceil(s.maxScaleUpRate * ready);
    const maxDown = Math.floor(ready / s.maxScaleDownRate);
    const dspc = Math.ceil(stable / s.targetPerInstance);
    const dppc = Math.ceil(panicValue / s.targetPerInstance);
    const stablePods = Math.min(Math.max(dspc, maxDown), maxUp);
    const panicPods = Math.min(Math.max(dppc, maxDown), maxUp);
    const over = dppc / ready >= s.panicThreshold;
    if (over) {
      this.panicSince = now;
    } else if (this.panicSince !== undefined && now - this.panicSince > s.stableWindowS) {
      this.panicSince = undefined;
      this.maxPanicPods = 0;
    }
    let desired = stablePods;
    if (this.panicSince !== undefined) {
      desired = Math.max(desired, panicPods, this.maxPanicPods);
      this.maxPanicPods = desired;
    }
    return Math.min(Math.max(desired, s.minScale), s.maxScale);
  }
}
