import type { Trace } from './traces.js';

/**
 * A discrete-time model of a revision under a load trace: the stats-sink reports the mean
 * concurrency of the last second once a second, the scaler answers with a desired instance
 * count (or keeps the last one), new instances serve after a start-up delay, and removed
 * instances stop taking requests at once (starting ones are removed first, then the newest).
 */

export interface SimulatedScaler {
  /** A load report at `t` seconds; returns the desired instance count, or undefined to keep it. */
  onSample(t: number, concurrency: number, ready: number): number | undefined;
}

export interface SimulationOptions {
  maxConcurrency: number;
  startupDelayS: number;
  initialInstances: number;
  stepS?: number;
}

export interface SimulationResult {
  /** Request-seconds of demand above maxConcurrency × ready instances. */
  underprovisioned_rs: number;
  /** Instance-seconds above the instances the demand needs at maxConcurrency (starting ones included). */
  overprovisioned_is: number;
  /** The longest stretch of under-provisioning: how long demand waited for sufficient capacity. */
  time_to_capacity_s: number;
  instance_seconds: number;
  max_instances: number;
}

export function simulate(trace: Trace, scaler: SimulatedScaler, options: SimulationOptions): SimulationResult {
  const step = options.stepS ?? 0.1;
  const stepsPerSample = Math.round(1 / step);
  let instances: number[] = Array.from({ length: options.initialInstances }, () => 0);
  let under = 0;
  let over = 0;
  let instanceSeconds = 0;
  let maxInstances = instances.length;
  let episodeStart: number | undefined;
  let longestEpisode = 0;
  let demandSinceSample = 0;
  const steps = Math.round(trace.durationS / step);
  for (let i = 0; i < steps; i++) {
    const t = i * step;
    const demand = trace.demand(t + step / 2);
    const ready = instances.filter((readyAt) => readyAt <= t).length;
    under += Math.max(0, demand - options.maxConcurrency * ready) * step;
    over += Math.max(0, instances.length - Math.ceil(demand / options.maxConcurrency)) * step;
    instanceSeconds += instances.length * step;
    if (demand > options.maxConcurrency * ready) {
      episodeStart ??= t;
      longestEpisode = Math.max(longestEpisode, t + step - episodeStart);
    } else {
      episodeStart = undefined;
    }
    demandSinceSample += demand;
    if ((i + 1) % stepsPerSample === 0) {
      const now = t + step;
      const reported = demandSinceSample / stepsPerSample;
      demandSinceSample = 0;
      const readyNow = instances.filter((readyAt) => readyAt <= now).length;
      const desired = scaler.onSample(now, reported, readyNow);
      if (desired !== undefined) instances = resize(instances, desired, now + options.startupDelayS);
      maxInstances = Math.max(maxInstances, instances.length);
    }
  }
  return {
    underprovisioned_rs: round(under),
    overprovisioned_is: round(over),
    time_to_capacity_s: round(longestEpisode),
    instance_seconds: round(instanceSeconds),
    max_instances: maxInstances,
  };
}

/** Grows with instances ready at `readyAt`, or shrinks by the latest to become ready. */
function resize(instances: number[], desired: number, readyAt: number): number[] {
  if (desired >= instances.length) return [...instances, ...Array.from({ length: desired - instances.length }, () => readyAt)];
  return [...instances].sort((a, b) => a - b).slice(0, desired);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
