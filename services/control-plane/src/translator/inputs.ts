import { clusterName, generationFromFuture, type EndpointSet, type HealthTransition } from '@switchyard/shared';
import { endpointKey, type EndpointHealth } from './desired-state.js';

/**
 * Folding bus messages into a {@link DesiredState}'s maps, for the wiring that receives them.
 * Both mutate the given map (translation reads it synchronously) and say whether it changed.
 */

/** What became of an endpoint set: kept, older than (or as old as) the one held, or numbered too far ahead of `now`. */
export type EndpointSetVerdict = 'recorded' | 'stale' | 'from_future';

/** Keeps the newest endpoint set of a revision. */
export function recordEndpointSet(sets: Map<string, EndpointSet>, set: EndpointSet, now: number): EndpointSetVerdict {
  if (generationFromFuture(set, now)) return 'from_future';
  const key = clusterName(set);
  const held = sets.get(key);
  if (held !== undefined && held.generation >= set.generation) return 'stale';
  sets.set(key, set);
  return 'recorded';
}

/**
 * Records an endpoint's health transition; one older than the state held is ignored. A
 * revision's map is replaced, never changed in place: the translator remembers what it
 * resolved from each map by identity.
 */
export function recordHealth(health: Map<string, ReadonlyMap<string, EndpointHealth>>, transition: HealthTransition): boolean {
  const cluster = clusterName(transition);
  const byEndpoint = health.get(cluster);
  const key = endpointKey(transition.endpoint.address, transition.endpoint.port);
  const held = byEndpoint?.get(key);
  if (held !== undefined && held.since > transition.ts) return false;
  if (held?.state === transition.state) return false;
  health.set(cluster, new Map(byEndpoint).set(key, { state: transition.state, since: transition.ts }));
  return true;
}
