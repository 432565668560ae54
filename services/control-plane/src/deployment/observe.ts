import { clusterName, type DeploymentRecord, type EndpointSet, type LoadSample } from '@switchyard/shared';
import { endpointKey, type EndpointHealth } from '../translator/index.js';
import type { RevisionObservation } from './planner.js';

/** Load samples older than this no longer say anything about the revision's error ratio. */
const loadFreshMs = 5000;

/**
 * What the controller knows about the deployed revision. An instance counts as healthy when
 * its provider reports it ready (it passed its readiness check) and no checker reports it
 * unhealthy; with HDS checkers connected their verdicts decide.
 */
export function observeRevision(
  deployment: DeploymentRecord,
  /** The service's minInstances: the shift waits for that many healthy instances (at least 1). */
  minInstances: number,
  inputs: {
    endpointSets: ReadonlyMap<string, EndpointSet>;
    health: ReadonlyMap<string, ReadonlyMap<string, EndpointHealth>>;
    load: ReadonlyMap<string, LoadSample>;
    notRunnable: ReadonlyMap<string, string>;
  },
  now: number,
): RevisionObservation {
  const cluster = clusterName(deployment);
  const health = inputs.health.get(cluster);
  let healthyInstances = 0;
  let unhealthyInstances = 0;
  for (const endpoint of inputs.endpointSets.get(cluster)?.endpoints ?? []) {
    if (endpoint.state !== 'ready') continue;
    if (health?.get(endpointKey(endpoint.address, endpoint.port))?.state === 'unhealthy') unhealthyInstances++;
    else healthyInstances++;
  }
  const load = inputs.load.get(cluster);
  const fresh = load !== undefined && now - load.ts <= loadFreshMs && load.rps > 0;
  return {
    healthyInstances,
    unhealthyInstances,
    requiredInstances: Math.max(1, minInstances),
    errorRatio: fresh ? load.errorRatio : null,
    notRunnable: inputs.notRunnable.get(cluster) ?? null,
  };
}
