import type { RevisionRef } from '@switchyard/shared';
import { toNumber, type DecodedLocality } from './decoded.js';
import type { ClassCounts, LrsLocalityReport, Source } from './reports.js';

/**
 * The aggregator's state per reporter, cluster and revision, and the arithmetic on it: rates,
 * counter deltas, locality gauges, and one node's share of a revision's load.
 */

export interface Reporter {
  id: string;
  source: Source;
  nodeId: string;
  open: boolean;
  countersAsDeltas: boolean;
  lastReportAt: number | undefined;
  /** Observed time between reports, for the staleness window and rates without a declared period. */
  periodMs: number;
  /** Reports received; a cluster whose rates are from an older report than the latest had no traffic since. */
  seq: number;
  /** Envoy's snapshot time of the previous MetricsService flush. */
  lastSnapshotMs: number | undefined;
  clusters: Map<string, ClusterState>;
  /**
   * The clusters by their position in the previous report: clients send the same clusters in
   * the same order every time, and comparing with the one at the same position is cheaper
   * than hashing a freshly decoded name.
   */
  order: (ClusterState | undefined)[];
  stale: boolean;
}

export interface ClusterState {
  cluster: string;
  /** Set once the state is no longer in its reporter (cluster gone, reporter dropped). */
  dropped: boolean;
  reporter: Reporter;
  revision: RevisionState;
  inFlight: number;
  /** When the gauge was last set (receive time); the freshest source wins for a node. */
  inFlightAt: number;
  /**
   * LRS: in-flight per locality, since clients omit localities whose counts did not change.
   * Most clusters have one locality: it is kept here (a copy updated in place, so nothing from a
   * decoded report outlives it) and the map is made only for a second one.
   */
  locality: LocalityGauge | undefined;
  localities: Map<string, number> | undefined;
  /** MetricsService cumulative counters as last seen, for deltas (undefined: no baseline yet). */
  lastTotal: number | undefined;
  lastClasses: ClassCounts | undefined;
  hasRates: boolean;
  rps: number;
  rates: ClassCounts;
  ratesPeriodMs: number;
  /** The reporter's seq of the last report that carried this cluster. */
  seenSeq: number;
}

export interface LocalityGauge {
  region: string;
  zone: string;
  subZone: string;
  inFlight: number;
}

export interface RevisionState {
  cluster: string;
  ref: RevisionRef;
  states: Set<ClusterState>;
  lastPublishedAt: number;
  /** Receive time of the earliest report not yet published. */
  dirtySince: number | undefined;
  pendingResponses: ClassCounts;
  lastActiveAt: number;
}

const maxLocalitiesPerCluster = 256;

export function positive(value: number | undefined): number | undefined {
  return value !== undefined && value > 0 && Number.isFinite(value) ? value : undefined;
}

/** The period between two MetricsService flushes: Envoy's snapshot times, else the receive gap. */
export function metricsPeriod(
  previousSnapshotMs: number | undefined,
  snapshotMs: number | undefined,
  gapMs: number | undefined,
): number | undefined {
  if (previousSnapshotMs !== undefined && snapshotMs !== undefined) return positive(snapshotMs - previousSnapshotMs);
  return positive(gapMs);
}

/** A cumulative counter that went down was reset (cluster re-created, Envoy restarted): it counted from zero since. */
export function counterDelta(previous: number, current: number): number {
  return current >= previous ? current - previous : current;
}

export function setRates(state: ClusterState, requests: number, c2: number, c3: number, c4: number, c5: number, periodMs: number): void {
  const perSecond = 1000 / periodMs;
  state.hasRates = true;
  state.rps = requests * perSecond;
  const rates = state.rates;
  rates[0] = c2 * perSecond;
  rates[1] = c3 * perSecond;
  rates[2] = c4 * perSecond;
  rates[3] = c5 * perSecond;
  state.ratesPeriodMs = periodMs;
}

/** Sets the in-flight gauge of the reported localities, keeps the others, and returns the cluster's sum. */
export function updateLocalities(state: ClusterState, reported: readonly LrsLocalityReport[]): number {
  const only = reported.length === 1 ? reported[0] : undefined;
  if (only !== undefined && state.localities === undefined) {
    const inFlight = toNumber(only.total_requests_in_progress);
    const kept = state.locality;
    if (kept === undefined) {
      const l = only.locality;
      state.locality = { region: l?.region ?? '', zone: l?.zone ?? '', subZone: l?.sub_zone ?? '', inFlight };
      return inFlight;
    }
    if (sameLocality(kept, only.locality)) {
      kept.inFlight = inFlight;
      return inFlight;
    }
  }
  let localities = state.localities;
  if (localities === undefined) {
    localities = new Map();
    const kept = state.locality;
    if (kept !== undefined) localities.set(localityKey(kept.region, kept.zone, kept.subZone), kept.inFlight);
    state.localities = localities;
    state.locality = undefined;
  }
  for (const stats of reported) {
    const l = stats.locality;
    const key = localityKey(l?.region ?? '', l?.zone ?? '', l?.sub_zone ?? '');
    if (localities.size < maxLocalitiesPerCluster || localities.has(key)) localities.set(key, toNumber(stats.total_requests_in_progress));
  }
  let sum = 0;
  for (const value of localities.values()) sum += value;
  return sum;
}

function sameLocality(kept: LocalityGauge, locality: DecodedLocality | null | undefined): boolean {
  return kept.zone === (locality?.zone ?? '') && kept.region === (locality?.region ?? '') && kept.subZone === (locality?.sub_zone ?? '');
}

function localityKey(region: string, zone: string, subZone: string): string {
  return `${region}/${zone}/${subZone}`;
}

export interface LoadSum {
  concurrency: number;
  rps: number;
  responses: ClassCounts;
  windowMs: number;
  nodes: number;
}

/**
 * Adds one node's numbers for a revision, from all its fresh streams: rates from MetricsService
 * when it has them (it knows the classes apart), else from LRS; the gauge from whichever source
 * set it last.
 */
export function addNode(sum: LoadSum, group: readonly ClusterState[]): void {
  const ratedByMetrics = group.length > 1 && group.some((s) => s.reporter.source === 'metrics' && s.hasRates);
  let lrsInFlight = 0;
  let lrsAt = Number.NEGATIVE_INFINITY;
  let metricsInFlight = 0;
  let metricsAt = Number.NEGATIVE_INFINITY;
  for (const state of group) {
    const source = state.reporter.source;
    if (source === 'lrs') {
      lrsInFlight += state.inFlight;
      lrsAt = Math.max(lrsAt, state.inFlightAt);
    } else {
      metricsInFlight += state.inFlight;
      metricsAt = Math.max(metricsAt, state.inFlightAt);
    }
    if (!state.hasRates || (ratedByMetrics && source === 'lrs')) continue;
    // An LRS client leaves out clusters without new requests: rates from an older report are over.
    if (source === 'lrs' && state.seenSeq !== state.reporter.seq) continue;
    sum.rps += state.rps;
    addCounts(sum.responses, state.rates);
    sum.windowMs = Math.max(sum.windowMs, state.ratesPeriodMs);
  }
  sum.concurrency += metricsAt > lrsAt ? metricsInFlight : lrsInFlight;
  sum.nodes++;
}

export function addCounts(into: ClassCounts, add: ClassCounts): void {
  into[0] += add[0];
  into[1] += add[1];
  into[2] += add[2];
  into[3] += add[3];
}

export function markDirty(revision: RevisionState, now: number): void {
  revision.dirtySince ??= now;
}
