import type { ScalingSpec } from '@switchyard/shared';
import { addPoint, recentRps, windowAverage, windowEnd, type LoadPoint } from './window.js';

/**
 * The scaling decision for one revision: a pure function of the revision's settings, its
 * decider state, the number of ready instances and the time. It does no I/O and reads no
 * clock; the runner calls it on every load sample (and on an idle tick when samples stop).
 */

export type DeciderSettings = Pick<
  ScalingSpec,
  | 'minInstances'
  | 'maxInstances'
  | 'maxConcurrency'
  | 'targetUtilization'
  | 'stableWindow'
  | 'panicWindow'
  | 'panicThreshold'
  | 'maxScaleUpRate'
  | 'maxScaleDownRate'
  | 'scaleDownDelay'
  | 'scaleToZeroGrace'
>;

export type LimitRule =
  'minInstances' | 'maxInstances' | 'maxScaleUpRate' | 'maxScaleDownRate' | 'scaleDownDelay' | 'panic' | 'scaleToZeroGrace';

export interface DeciderState {
  points: LoadPoint[];
  /** Last time the panic-window demand was at or over the panic threshold; null when not panicking. */
  panicSince: number | null;
  lastOverThreshold: number | null;
  /** The most instances asked for during the current panic: panic never scales down. */
  panicPeak: number;
  /** Recent recommendations, for the scale-down delay (the highest within the delay wins). */
  recent: { ts: number; desired: number }[];
  /** Since when the recommendation has been zero instances (scale-to-zero grace). */
  idleSince: number | null;
  /** The previous decision's result. */
  desired: number;
}

export interface DecideInput {
  now: number;
  /** Instances currently serving (ready, not draining). */
  ready: number;
  /** The load sample that triggered this decision; absent on idle ticks. */
  sample?: LoadPoint;
  /** Requests activators hold for the revision right now (it has no ready instance): concurrency it must carry at once. */
  held?: number;
}

export interface Decision {
  current: number;
  desired: number;
  stableConcurrency: number;
  panicConcurrency: number;
  panic: boolean;
  targetPerInstance: number;
  limitedBy: LimitRule | null;
  reason: string;
}

/**
 * State for a revision the decider starts on, optionally with load points already observed
 * (a standby replica keeps them). With more than one instance already asked for (e.g. by the
 * previous leader) it starts in panic mode: no scale-down until the panic ends, which takes
 * a full stable window of history, so a short history cannot scale the revision down blind.
 */
export function initialDeciderState(desired: number, now: number, points: LoadPoint[] = []): DeciderState {
  const hold = desired > 1;
  return {
    points,
    panicSince: hold ? now : null,
    lastOverThreshold: hold ? now : null,
    panicPeak: hold ? desired : 0,
    recent: [],
    idleSince: null,
    desired,
  };
}

/** Instances at `targetPerInstance` each that carry `concurrency`. */
function instancesFor(concurrency: number, targetPerInstance: number): number {
  // Rounding noise (e.g. 140.00000001 / 70) must not cost a whole instance.
  return Math.max(0, Math.ceil(concurrency / targetPerInstance - 1e-9));
}

export function decide(settings: DeciderSettings, state: DeciderState, input: DecideInput): { decision: Decision; state: DeciderState } {
  const { now, ready } = input;
  const points = input.sample === undefined ? state.points : addPoint(state.points, input.sample, settings.stableWindow);
  const target = settings.maxConcurrency * settings.targetUtilization;
  const end = windowEnd(points, now);
  const stable = windowAverage(points, end, settings.stableWindow);
  const panicLoad = windowAverage(points, end, settings.panicWindow);
  const base = Math.max(1, ready);

  const stableWant = instancesFor(stable, target);
  const panicWant = instancesFor(panicLoad, target);
  const latest = points.at(-1);
  const latestLoad = latest !== undefined && end === latest.ts ? latest.concurrency : 0;

  // Held requests are a surge the load reports cannot show yet (they are not on any instance).
  const held = input.held ?? 0;
  const heldWant = instancesFor(held, target);
  const over = Math.max(panicWant, heldWant) >= settings.panicThreshold * base;
  let panicSince = state.panicSince;
  let lastOverThreshold = state.lastOverThreshold;
  let panicPeak = state.panicPeak;
  if (over) {
    panicSince ??= now;
    lastOverThreshold = now;
  } else if (panicSince !== null && lastOverThreshold !== null) {
    // The surge is over once the last panic window shows no more demand than a full stable
    // window (it has caught up, or the demand fell back), and at the latest after a stable
    // window below the threshold.
    const calm = now - lastOverThreshold;
    const first = points[0];
    const fullHistory = first !== undefined && first.ts - first.windowMs <= end - settings.stableWindow;
    if ((calm >= settings.panicWindow && fullHistory && panicLoad <= stable) || calm >= settings.stableWindow) {
      panicSince = null;
      lastOverThreshold = null;
      panicPeak = 0;
    }
  }
  const panic = panicSince !== null;

  let want: number;
  let reason: string;
  if (panic) {
    // In a surge the freshest sample is the best estimate of demand: waiting for the panic
    // window to fill would add its length to the time to capacity.
    const latestWant = over ? instancesFor(latestLoad, target) : 0;
    want = Math.max(stableWant, panicWant, latestWant);
    reason = `panic: ${panicLoad.toFixed(1)} in flight over the panic window, ${latestLoad.toFixed(1)} now, at ${target} per instance → ${want}`;
  } else {
    want = stableWant;
    reason = `${stable.toFixed(1)} in flight over the stable window at ${target} per instance → ${want}`;
  }

  if (heldWant > want) {
    want = heldWant;
    reason = `${held} requests held by the activator at ${target} per instance → ${want}`;
  }

  // A revision at zero instances sees no concurrency (Envoy fails its requests at once), only
  // their rate: any request wakes it.
  if (want === 0 && ready === 0 && recentRps(points, end, settings.panicWindow) > 0) {
    want = 1;
    reason = 'requests arrive for a revision without instances → 1';
  }

  let desired = want;
  let limitedBy: LimitRule | null = null;
  const limit = (value: number, rule: LimitRule, why: string) => {
    if (value === desired) return;
    desired = value;
    limitedBy = rule;
    reason += `; ${why} → ${value}`;
  };

  const maxUp = Math.ceil(settings.maxScaleUpRate * base);
  const maxDown = Math.floor(base / settings.maxScaleDownRate);
  if (desired > maxUp) limit(maxUp, 'maxScaleUpRate', `scale-up rate ${settings.maxScaleUpRate}× of ${base}`);
  if (desired < maxDown) limit(maxDown, 'maxScaleDownRate', `scale-down rate ${settings.maxScaleDownRate}× of ${base}`);

  if (panic) {
    if (desired < panicPeak) limit(panicPeak, 'panic', 'panicking: no scale-down');
    panicPeak = Math.max(panicPeak, desired);
  }

  let recent = state.recent;
  if (settings.scaleDownDelay > 0) {
    recent = [...recent.filter((r) => now - r.ts < settings.scaleDownDelay), { ts: now, desired }];
    const held = Math.max(...recent.map((r) => r.desired));
    if (held > desired) limit(held, 'scaleDownDelay', `highest recommendation of the last ${settings.scaleDownDelay} ms`);
  }

  if (desired > settings.maxInstances) limit(settings.maxInstances, 'maxInstances', 'maxInstances');

  let idleSince = state.idleSince;
  if (desired > 0) {
    idleSince = null;
    if (desired < settings.minInstances) limit(settings.minInstances, 'minInstances', 'minInstances');
  } else if (settings.minInstances > 0) {
    limit(settings.minInstances, 'minInstances', 'minInstances');
  } else {
    idleSince ??= now;
    if (state.desired > 0 && now - idleSince < settings.scaleToZeroGrace) {
      limit(1, 'scaleToZeroGrace', `idle for ${now - idleSince} ms of the ${settings.scaleToZeroGrace} ms grace`);
    }
  }

  return {
    decision: {
      current: ready,
      desired,
      stableConcurrency: stable,
      panicConcurrency: panicLoad,
      panic,
      targetPerInstance: target,
      limitedBy,
      reason,
    },
    state: { points, panicSince, lastOverThreshold, panicPeak, recent, idleSince, desired },
  };
}
