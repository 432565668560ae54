import type { DeploymentRecord } from '@switchyard/shared';

/**
 * The deployment controller's decision, a pure function of the deployment, what is observed
 * about the new revision, and the time: scale up → shift traffic (all at once or in canary
 * steps) → bake → complete, or roll back when health fails or the 5xx ratio passes the limit.
 */

export interface RevisionObservation {
  /** Instances of the new revision that are ready and not reported unhealthy. */
  healthyInstances: number;
  /** Instances of the new revision reported unhealthy. */
  unhealthyInstances: number;
  /** How many healthy instances the shift waits for (the service's minInstances, at least 1). */
  requiredInstances: number;
  /** The new revision's error ratio (5xx / all) over the last load window; null without traffic. */
  errorRatio: number | null;
  /** Why the instance provider cannot run the new revision at all (e.g. an image under a provider of commands); null when it can. */
  notRunnable: string | null;
}

export interface PlannerSettings {
  /** How long to wait for the new revision to become healthy before giving up. */
  scaleTimeoutMs: number;
}

export const defaultPlannerSettings: PlannerSettings = { scaleTimeoutMs: 5 * 60_000 };

export type TrafficSplit = { revision: string; percent: number }[];

export interface PlannerStep {
  deployment: DeploymentRecord;
  /** A new split to write, when this step changes traffic. */
  traffic?: TrafficSplit;
  /** True when this step changed the deployment (phase, step or message) and should be published. */
  changed: boolean;
}

export function planDeployment(
  deployment: DeploymentRecord,
  observed: RevisionObservation,
  now: number,
  settings: PlannerSettings = defaultPlannerSettings,
): PlannerStep {
  const unchanged: PlannerStep = { deployment, changed: false };
  switch (deployment.phase) {
    case 'scaling': {
      if (observed.notRunnable !== null) {
        return finish(
          deployment,
          'failed',
          now,
          `revision ${deployment.revision} cannot start: ${observed.notRunnable}; traffic unchanged`,
        );
      }
      if (observed.healthyInstances >= Math.max(1, observed.requiredInstances)) return shiftTo(deployment, 0, now);
      if (now - deployment.phaseSince >= settings.scaleTimeoutMs) {
        return finish(
          deployment,
          'failed',
          now,
          `revision ${deployment.revision} did not become healthy within ${settings.scaleTimeoutMs} ms; traffic unchanged`,
        );
      }
      return unchanged;
    }
    case 'baking': {
      const failure = failureOf(deployment, observed);
      if (failure !== undefined) {
        return { ...finish(deployment, 'rolled_back', now, `rolled back: ${failure}`), traffic: deployment.previousTraffic };
      }
      if (now - deployment.phaseSince < deployment.bakeMs) return unchanged;
      if (deployment.steps[deployment.stepIndex] === 100) {
        return finish(deployment, 'completed', now, `revision ${deployment.revision} serves all traffic`);
      }
      return shiftTo(deployment, deployment.stepIndex + 1, now);
    }
    default:
      return unchanged;
  }
}

function failureOf(deployment: DeploymentRecord, observed: RevisionObservation): string | undefined {
  if (observed.errorRatio !== null && observed.errorRatio > deployment.maxErrorRatio) {
    return `error ratio ${observed.errorRatio.toFixed(3)} above ${deployment.maxErrorRatio}`;
  }
  if (observed.unhealthyInstances > 0 && observed.healthyInstances === 0) {
    return `no healthy instance of ${deployment.revision} (${observed.unhealthyInstances} unhealthy)`;
  }
  return undefined;
}

function shiftTo(deployment: DeploymentRecord, stepIndex: number, now: number): PlannerStep {
  const percent = deployment.steps[stepIndex] as number;
  return {
    deployment: {
      ...deployment,
      phase: 'baking',
      stepIndex,
      phaseSince: now,
      message: `${percent}% of traffic on ${deployment.revision}, baking for ${deployment.bakeMs} ms`,
    },
    traffic: splitWith(deployment.previousTraffic, deployment.revision, percent),
    changed: true,
  };
}

function finish(deployment: DeploymentRecord, phase: 'completed' | 'rolled_back' | 'failed', now: number, message: string): PlannerStep {
  return { deployment: { ...deployment, phase, phaseSince: now, message }, changed: true };
}

/**
 * Gives `percent` to `revision` and shares the rest among the previous split in proportion,
 * so a canary taken from an 80/20 service keeps its 4:1 ratio on the remainder. Rounding
 * leftovers go to the largest share, and the total is always exactly 100.
 */
export function splitWith(previous: TrafficSplit, revision: string, percent: number): TrafficSplit {
  const others = previous.filter((entry) => entry.revision !== revision && entry.percent > 0);
  const othersTotal = others.reduce((sum, entry) => sum + entry.percent, 0);
  if (percent >= 100 || othersTotal === 0) return [{ revision, percent: 100 }];
  const remainder = 100 - percent;
  const shares = others.map((entry) => ({ revision: entry.revision, percent: Math.floor((entry.percent * remainder) / othersTotal) }));
  const leftover = remainder - shares.reduce((sum, entry) => sum + entry.percent, 0);
  const largest = shares.reduce(
    (best, entry) => (entry.percent > best.percent ? entry : best),
    shares[0] as { revision: string; percent: number },
  );
  largest.percent += leftover;
  return [{ revision, percent }, ...shares.filter((entry) => entry.percent > 0)];
}

/** A manual rollback of a deployment in progress: the previous split comes back at once. */
export function rollBackDeployment(deployment: DeploymentRecord, now: number, reason: string): PlannerStep {
  return { ...finish(deployment, 'rolled_back', now, `rolled back: ${reason}`), traffic: deployment.previousTraffic };
}
