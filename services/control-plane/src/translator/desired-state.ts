import type { EndpointSet, LoadSample, ServiceRecord, TenantRecord } from '@switchyard/shared';
import type { Snapshot } from '../resources.js';

/** An endpoint's health as aggregated from the checkers (the `health` subject). */
export type HealthState = 'healthy' | 'unhealthy' | 'unknown';

export interface EndpointHealth {
  state: HealthState;
  /** When the endpoint entered this state (ms since the epoch); unhealthy endpoints are reaped after `reapUnhealthyAfterMs`. */
  since: number;
}

/** Everything the translator reads: the desired state from the KV plus what the bus reported. */
export interface DesiredState {
  tenants: readonly TenantRecord[];
  services: readonly ServiceRecord[];
  /** The latest endpoint set of each managed revision, keyed by `clusterName(revision)`. */
  endpointSets: ReadonlyMap<string, EndpointSet>;
  /** Endpoint health keyed by `clusterName(revision)`, then by `endpointKey(address, port)`. */
  health: ReadonlyMap<string, ReadonlyMap<string, EndpointHealth>>;
  /** The time the translation is for (ms since the epoch); only the reaping of unhealthy endpoints depends on it. */
  now: number;
  /**
   * Each service's last record that translated (`TranslationResult.accepted`), keyed by
   * `tenant/name`: a service whose current record fails the checks is served from it, with
   * the errors still reported.
   */
  lastGood?: ReadonlyMap<string, ServiceRecord>;
  /** The latest load sample of each managed revision, keyed by cluster name: requests in flight for the target burst capacity. */
  load?: ReadonlyMap<string, LoadSample>;
  /** Each revision's burst state from the previous translation ({@link TranslationResult.burst}): the exit hold runs on. */
  burst?: ReadonlyMap<string, BurstState>;
}

/** Whether a revision is short of its target burst capacity (its traffic goes through the activator). */
export interface BurstState {
  short: boolean;
  /** When spare capacity was last below the target (ms since the epoch). */
  lastShortAt: number;
}

/** A revision with a positive target burst capacity: its state, capacity (ready endpoints × maxConcurrency) and target. */
export interface BurstEntry {
  state: BurstState;
  capacity: number;
  target: number;
}

/** The key of an endpoint in {@link DesiredState.health}. IPv6 addresses are bracketed, as in a URL. */
export function endpointKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Says why an endpoint address may not be used, or undefined when it may. */
export interface EndpointPolicy {
  refusal(address: string): string | undefined;
}

export interface ListenerOptions {
  address: string;
  port: number;
  /** The port clients connect to (differs from `port` behind NAT or a Kubernetes Service); sent as X-Forwarded-Port. */
  publicPort: number;
}

/** Operator settings of the translation; tenants never reach these. */
export interface TranslateOptions {
  http: ListenerOptions;
  https: ListenerOptions;
  /** Proxies in front of Envoy whose X-Forwarded-For entries are trusted (0: Envoy is the edge). */
  trustedHops: number;
  /** EDS leaves out endpoints that have been unhealthy this long (the autoscaler replaces them). */
  reapUnhealthyAfterMs: number;
  /**
   * The operator's endpoint allowlist (`SWITCHYARD_ENDPOINT_CIDRS`), applied to every endpoint,
   * static or from an endpoint set: a refused one never reaches EDS. Absent: every IP passes.
   */
  endpointAllowlist?: EndpointPolicy;
  /**
   * Active health checks run by every Envoy itself. Off by default: the event-streamer delegates
   * each endpoint's check to a few Envoys over HDS and the verdict reaches EDS, so enabling this
   * multiplies probe load by the fleet size. Useful for a small fleet without an event-streamer.
   */
  activeHealthChecks?: { eventLogPath: string };
  /** The activator's replicas, where EDS sends the traffic of revisions at zero or short of burst capacity (`throughActivator`). */
  activator?: readonly { address: string; port: number }[];
  /** OpenTelemetry tracing of every request through a collector cluster defined in the bootstrap. */
  tracing?: { collectorCluster: string; serviceName: string; samplingPercent: number };
}

export const defaultTranslateOptions: TranslateOptions = {
  http: { address: '0.0.0.0', port: 8080, publicPort: 80 },
  https: { address: '0.0.0.0', port: 8443, publicPort: 443 },
  trustedHops: 0,
  reapUnhealthyAfterMs: 60_000,
};

/** Something the translator left out, and why: a whole service, or one endpoint of it. */
export interface TranslationError {
  tenant: string;
  service: string;
  /** Path of the field at fault, e.g. `spec.routes[0].match.regex` or `endpoints.blue[i-3]`. */
  field: string;
  message: string;
}

export interface TranslationResult {
  snapshot: Snapshot;
  /** Sorted by tenant, service, field. */
  errors: TranslationError[];
  /** The records translated as they are; the caller keeps them as the next {@link DesiredState.lastGood}. */
  accepted: ServiceRecord[];
  /** The earliest future time at which the same state translates differently (an endpoint reaped, a burst hold ended); translate again then. */
  nextChangeAt?: number;
  /** Burst entries by cluster name (revisions with a positive target burst capacity, with an activator configured). */
  burst: Map<string, BurstEntry>;
}
