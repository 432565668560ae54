import { isIP } from 'node:net';
import type { EndpointSet, LoadSample, RevisionSpec, ScalingSpec, ServiceSpec } from '@switchyard/shared';
import {
  endpointKey,
  type BurstEntry,
  type BurstState,
  type DesiredState,
  type EndpointHealth,
  type TranslateOptions,
} from './desired-state.js';
import type { EndpointIR, EndpointStatus } from './ir.js';

export interface ResolvedEndpoints {
  endpoints: EndpointIR[];
  /** Endpoints left out, by field (`endpoints.<revision>[<id>]`). */
  dropped: { field: string; message: string }[];
  /** When the next unhealthy endpoint of this revision is due to be reaped. */
  nextReapAt?: number;
}

/**
 * A revision's endpoints as EDS should carry them. Static revisions use the spec's addresses;
 * managed ones the latest endpoint set, where `starting` instances are not routable yet and
 * `draining` ones become DRAINING (no new requests). Health from the checkers sets the status;
 * an endpoint unhealthy for `reapAfterMs` is left out altogether.
 */
export function resolveEndpoints(
  revision: RevisionSpec,
  cluster: string,
  state: Pick<DesiredState, 'endpointSets' | 'health' | 'now'>,
  options: Pick<TranslateOptions, 'reapUnhealthyAfterMs' | 'endpointAllowlist'>,
): ResolvedEndpoints {
  const inputs: ResolveInputs = { cluster, set: state.endpointSets.get(cluster), health: state.health.get(cluster), options };
  const known = resolved.get(revision);
  if (known !== undefined && sameInputs(known.inputs, inputs) && (known.result.nextReapAt ?? Infinity) > state.now) return known.result;
  const result = resolveAnew(revision, inputs, state.now);
  resolved.set(revision, { inputs, result });
  return result;
}

interface ResolveInputs {
  cluster: string;
  set: EndpointSet | undefined;
  health: ReadonlyMap<string, EndpointHealth> | undefined;
  options: Pick<TranslateOptions, 'reapUnhealthyAfterMs' | 'endpointAllowlist'>;
}

/**
 * The last resolution per revision spec, with what it was resolved from. Every translation
 * resolves every revision; from the same objects (endpoint sets and health maps are replaced,
 * never changed in place) the result is the same array, so its load assignment is not built
 * or compared again. Valid until the next unhealthy endpoint is due to be reaped.
 */
const resolved = new WeakMap<RevisionSpec, { inputs: ResolveInputs; result: ResolvedEndpoints }>();

function sameInputs(a: ResolveInputs, b: ResolveInputs): boolean {
  return a.cluster === b.cluster && a.set === b.set && a.health === b.health && a.options === b.options;
}

function resolveAnew(revision: RevisionSpec, { set, health, options }: ResolveInputs, now: number): ResolvedEndpoints {
  const result: ResolvedEndpoints = { endpoints: [], dropped: [] };
  const seen = new Set<string>();
  const candidates = revision.endpoints
    ? revision.endpoints.map((e) => ({ address: e.address, port: e.port, draining: false, id: undefined }))
    : managedCandidates(set, revision.name, result);
  for (const candidate of candidates) {
    const key = endpointKey(candidate.address, candidate.port);
    const refusal = options.endpointAllowlist?.refusal(candidate.address);
    if (refusal !== undefined) {
      result.dropped.push({ field: `endpoints.${revision.name}[${candidate.id ?? key}]`, message: refusal });
      continue;
    }
    // Duplicates would make grpc-js-xds NACK the assignment; the first one stands.
    if (seen.has(key)) continue;
    seen.add(key);
    const observed = health?.get(key);
    if (observed?.state === 'unhealthy') {
      const reapAt = observed.since + options.reapUnhealthyAfterMs;
      if (now >= reapAt) continue;
      result.nextReapAt = Math.min(result.nextReapAt ?? Infinity, reapAt);
    }
    result.endpoints.push({ address: candidate.address, port: candidate.port, status: status(candidate.draining, observed) });
  }
  return result;
}

/**
 * Whether a managed revision's traffic goes through the activator (every activator replica is
 * an endpoint), which holds its requests and forwards them within each instance's
 * maxConcurrency; the one rule for it:
 * - scale from zero: a revision allowed to scale to zero whose endpoints include none that can
 *   take requests (ready, not draining, not unhealthy);
 * - target burst capacity (Knative's): `-1` always; a positive one while the revision is
 *   short of spare capacity ({@link burstState}).
 * Otherwise EDS carries the instances.
 */
export function throughActivator(
  revision: RevisionSpec,
  service: Pick<ServiceSpec, 'scaling'>,
  endpoints: EndpointIR[],
  activators: readonly { address: string; port: number }[] | undefined,
  burst: BurstEntry | undefined,
): EndpointIR[] {
  if (activators === undefined || revision.endpoints !== undefined) return endpoints;
  const { minInstances, targetBurstCapacity } = service.scaling;
  const atZero = minInstances === 0 && !endpoints.some(routable);
  if (!atZero && targetBurstCapacity !== -1 && burst?.state.short !== true) return endpoints;
  return activators.map(({ address, port }) => ({ address, port, status: 'HEALTHY' }));
}

/** How long spare capacity must stay at or above the target burst capacity before the activator leaves the path (so it does not flap). */
export const burstExitHoldMs = 3000;

/** A load sample counts for this many of its report windows; after that, nothing is in flight (no report came). */
const loadSampleWindows = 3;

/**
 * The burst state of a revision with a positive target burst capacity: short while spare
 * capacity (capacity − requests in flight) is below the target, and still short until it has
 * stayed at or above the target for {@link burstExitHoldMs}.
 */
export function burstState(
  previous: BurstState | undefined,
  input: { target: number; capacity: number; concurrency: number; now: number },
): BurstState {
  if (input.capacity - input.concurrency < input.target) return { short: true, lastShortAt: input.now };
  if (previous?.short === true && input.now - previous.lastShortAt < burstExitHoldMs) return previous;
  return { short: false, lastShortAt: previous?.lastShortAt ?? 0 };
}

/** Requests in flight by the revision's latest load sample; 0 once the sample is older than its windows allow. */
export function inFlight(sample: LoadSample | undefined, now: number): number {
  if (sample === undefined || now - sample.ts > loadSampleWindows * sample.windowMs) return 0;
  return sample.concurrency;
}

/**
 * A revision's burst entry (positive target burst capacity, activator configured): its
 * capacity from the endpoints that can take requests, its state, and when it would change
 * with no new input (the exit hold ends, or the load sample goes stale).
 */
export function revisionBurst(
  scaling: Pick<ScalingSpec, 'targetBurstCapacity' | 'maxConcurrency'>,
  endpoints: EndpointIR[],
  previous: BurstState | undefined,
  sample: LoadSample | undefined,
  now: number,
): { entry: BurstEntry; changeAt?: number } {
  const target = scaling.targetBurstCapacity;
  const capacity = endpoints.filter(routable).length * scaling.maxConcurrency;
  const concurrency = inFlight(sample, now);
  const entry = { state: burstState(previous, { target, capacity, concurrency, now }), capacity, target };
  const changes: number[] = [];
  if (entry.state.short && capacity - concurrency >= target) changes.push(entry.state.lastShortAt + burstExitHoldMs);
  if (concurrency > 0 && sample !== undefined) changes.push(sample.ts + loadSampleWindows * sample.windowMs + 1);
  return changes.length === 0 ? { entry } : { entry, changeAt: Math.min(...changes) };
}

function routable(endpoint: EndpointIR): boolean {
  return endpoint.status === 'HEALTHY' || endpoint.status === 'UNKNOWN';
}

function managedCandidates(set: EndpointSet | undefined, revision: string, result: ResolvedEndpoints) {
  const candidates: { address: string; port: number; draining: boolean; id: string }[] = [];
  for (const endpoint of set?.endpoints ?? []) {
    if (endpoint.state === 'starting') continue;
    if (isIP(endpoint.address) === 0) {
      result.dropped.push({
        field: `endpoints.${revision}[${endpoint.id}]`,
        message: `address "${endpoint.address}" is not an IP address (EDS carries IP addresses only)`,
      });
      continue;
    }
    candidates.push({ address: endpoint.address, port: endpoint.port, draining: endpoint.state === 'draining', id: endpoint.id });
  }
  return candidates;
}

function status(draining: boolean, observed: EndpointHealth | undefined): EndpointStatus {
  if (draining) return 'DRAINING';
  if (observed?.state === 'healthy') return 'HEALTHY';
  if (observed?.state === 'unhealthy') return 'UNHEALTHY';
  return 'UNKNOWN';
}
