import { parseClusterName, type RevisionRef } from '@switchyard/shared';
import { durationMs, toNumber } from './decoded.js';
import {
  addCounts,
  addNode,
  counterDelta,
  markDirty,
  metricsPeriod,
  positive,
  setRates,
  updateLocalities,
  type ClusterState,
  type LoadSum,
  type Reporter,
  type RevisionState,
} from './cluster-state.js';
import type { ClassCounts, LrsClusterReport, MetricsClusterReport, Report, Source } from './reports.js';

/**
 * The pure core of the stats-sink: folds what every node reports into fleet-wide load per
 * revision. No I/O and no clock: every call takes `now` (ms).
 *
 * A reporter is one node's stream of one source (LRS or MetricsService). Per reporter and
 * cluster it keeps the in-flight gauge and the latest request rates, each rate computed over
 * the period its report covers (LRS `load_report_interval`; between two MetricsService
 * flushes). A revision's load is the sum over nodes whose reporter is fresh:
 *
 * - One node may report over both sources. Its rates then come from MetricsService (which
 *   knows 2xx/3xx/4xx apart; LRS only knows success and error) and its concurrency from
 *   whichever source reported the gauge last, so a node is never counted twice.
 * - A reporter silent for longer than its staleness window stops counting; the window is
 *   STATS_STALE_AFTER_MS, or two of the reporter's own periods when that is longer (Envoy
 *   flushes stats every 5 s by default), capped at a minute.
 * - A stream that closes keeps counting until stale; a new stream of the same node and
 *   source adopts its state, so a reconnect neither drops the node nor loses the counter
 *   baselines of cumulative MetricsService counters.
 */

export interface AggregatorOptions {
  /** Each revision is published at least this often. */
  intervalMs: number;
  staleAfterMs: number;
  maxClustersPerReporter: number;
  maxRevisions: number;
  /** A revision without fresh nodes is published with zeros this long, then forgotten. */
  revisionIdleMs: number;
  /** Also give each node's share of a revision's load (replicas merge shares; one replica alone needs none). */
  nodeShares?: boolean;
}

/** One node's part of a revision's load, and when this sink last heard from it. */
export interface NodeShare {
  nodeId: string;
  at: number;
  concurrency: number;
  rps: number;
  responses: ClassCounts;
  windowMs: number;
}

export interface ReporterOptions {
  /** MetricsService `report_counters_as_deltas` of this node. */
  countersAsDeltas: boolean;
}

export type DropReason = 'not_switchyard' | 'cluster_limit' | 'revision_limit';

export interface IngestOutcome {
  /** Cluster reports taken in. */
  accepted: number;
  dropped: Record<DropReason, number>;
}

export interface RevisionLoad {
  ref: RevisionRef;
  cluster: string;
  concurrency: number;
  rps: number;
  /** Responses per second by class. */
  responses: ClassCounts;
  errorRatio: number;
  windowMs: number;
  nodes: number;
  /** Per node, when the aggregator was asked for shares. */
  shares?: NodeShare[];
}

export interface PublishedLoad extends RevisionLoad {
  /** Responses taken in since the revision was last published, by class (for counters). */
  newResponses: ClassCounts;
  /** From the earliest report not yet published to now; undefined when nothing new came in. */
  lagMs: number | undefined;
}

export interface Collected {
  due: PublishedLoad[];
  /** Revisions idle for longer than revisionIdleMs; they are no longer tracked. */
  forgotten: { ref: RevisionRef; cluster: string }[];
  /** Reporters that went stale since the previous collect. */
  newlyStale: { source: Source; nodeId: string }[];
}

export interface ServiceLoad {
  tenant: string;
  service: string;
  concurrency: number;
  rps: number;
  responses: ClassCounts;
  errorRatio: number;
  revisions: RevisionLoad[];
}

export interface ReporterCounts {
  open: number;
  fresh: number;
  stale: number;
}

const maxStaleWindowMs = 60_000;

export class LoadAggregator {
  private readonly reporters = new Map<string, Reporter>();
  /** Reporters by `source|nodeId`, for adoption on reconnect and for cross-source deduplication. */
  private readonly lineage = new Map<string, Set<Reporter>>();
  private readonly revisions = new Map<string, RevisionState>();
  private readonly names = new Map<string, RevisionRef | null>();
  private readonly options: AggregatorOptions;
  private revisionsChanged = 0;
  /** Streams per node id, and how many node ids have more than one (then load() groups by node). */
  private readonly streamsPerNode = new Map<string, number>();
  private sharedNodeIds = 0;

  constructor(options: AggregatorOptions) {
    this.options = options;
  }

  /** How often the runner should call {@link collect}: half an interval, so new reports wait at most that long. */
  get tickMs(): number {
    return Math.max(1, Math.floor(this.options.intervalMs / 2));
  }

  get revisionCount(): number {
    return this.revisions.size;
  }

  /** Changes whenever a revision starts or stops being tracked. */
  get clustersVersion(): number {
    return this.revisionsChanged;
  }

  /** The clusters of every tracked revision: what LRS clients that cannot be told "send all" are asked for. */
  clusterNames(): string[] {
    return [...this.revisions.keys()];
  }

  /** Starts a stream once its node is known. Adopts the state of a closed stream of the same node and source. */
  open(id: string, source: Source, nodeId: string, options: ReporterOptions): void {
    const key = lineageKey(source, nodeId);
    let family = this.lineage.get(key);
    if (family === undefined) {
      family = new Set();
      this.lineage.set(key, family);
    }
    let adopted: Reporter | undefined;
    for (const previous of family) {
      if (previous.open) continue;
      if (adopted === undefined || (previous.lastReportAt ?? 0) > (adopted.lastReportAt ?? 0)) {
        if (adopted !== undefined) this.drop(adopted);
        adopted = previous;
      } else {
        this.drop(previous);
      }
    }
    if (adopted !== undefined) {
      this.reporters.delete(adopted.id);
      adopted.id = id;
      adopted.open = true;
      adopted.countersAsDeltas = options.countersAsDeltas;
      this.reporters.set(id, adopted);
      return;
    }
    const reporter: Reporter = {
      id,
      source,
      nodeId,
      open: true,
      countersAsDeltas: options.countersAsDeltas,
      lastReportAt: undefined,
      periodMs: source === 'lrs' ? this.options.intervalMs : this.options.staleAfterMs,
      seq: 0,
      lastSnapshotMs: undefined,
      clusters: new Map(),
      order: [],
      stale: false,
    };
    family.add(reporter);
    this.reporters.set(id, reporter);
    const streams = (this.streamsPerNode.get(nodeId) ?? 0) + 1;
    this.streamsPerNode.set(nodeId, streams);
    if (streams === 2) this.sharedNodeIds++;
  }

  /**
   * Ends a stream. Its numbers keep counting until stale, unless another open stream of the
   * same node and source exists (then it was replaced, and is dropped now).
   */
  close(id: string): void {
    const reporter = this.reporters.get(id);
    if (reporter === undefined) return;
    reporter.open = false;
    const family = this.lineage.get(lineageKey(reporter.source, reporter.nodeId));
    const replaced = family !== undefined && [...family].some((r) => r !== reporter && r.open);
    if (replaced || reporter.lastReportAt === undefined) this.drop(reporter);
  }

  ingest(id: string, report: Report, now: number): IngestOutcome {
    const outcome: IngestOutcome = { accepted: 0, dropped: { not_switchyard: 0, cluster_limit: 0, revision_limit: 0 } };
    const reporter = this.reporters.get(id);
    if (reporter === undefined) return outcome;
    const gapMs = reporter.lastReportAt === undefined ? undefined : now - reporter.lastReportAt;
    if (gapMs !== undefined && gapMs > 0) reporter.periodMs = gapMs;
    reporter.lastReportAt = now;
    reporter.stale = false;
    reporter.seq++;
    if (report.source === 'lrs') {
      const metricsTwins = this.lineage.get(lineageKey('metrics', reporter.nodeId));
      let position = 0;
      for (const cluster of report.clusters) this.ingestLrs(reporter, cluster, position++, gapMs, now, metricsTwins, outcome);
    } else {
      const periodMs = metricsPeriod(reporter.lastSnapshotMs, report.snapshotMs, gapMs);
      if (report.snapshotMs !== undefined) reporter.lastSnapshotMs = report.snapshotMs;
      let position = 0;
      for (const cluster of report.clusters) this.ingestMetrics(reporter, cluster, position++, periodMs, now, outcome);
      // Every flush carries every used stat: a cluster missing from it is gone from that Envoy.
      for (const state of reporter.clusters.values()) if (state.seenSeq !== reporter.seq) this.dropState(state);
    }
    return outcome;
  }

  private ingestLrs(
    reporter: Reporter,
    report: LrsClusterReport,
    position: number,
    gapMs: number | undefined,
    now: number,
    metricsTwins: Set<Reporter> | undefined,
    outcome: IngestOutcome,
  ): void {
    const name = report.cluster_name ?? '';
    if (name === '') return;
    const state = this.stateFor(reporter, name, position, outcome);
    if (state === undefined) return;
    const localities = report.upstream_locality_stats ?? [];
    let issued = 0;
    let successful = 0;
    let errors = 0;
    for (const locality of localities) {
      issued += toNumber(locality.total_issued_requests);
      successful += toNumber(locality.total_successful_requests);
      errors += toNumber(locality.total_error_requests);
    }
    if (localities.length > 0) {
      state.inFlight = updateLocalities(state, localities);
      state.inFlightAt = now;
    }
    state.seenSeq = reporter.seq;
    const periodMs = positive(durationMs(report.load_report_interval)) ?? positive(gapMs) ?? this.options.intervalMs;
    setRates(state, issued, successful, 0, 0, errors, periodMs);
    if (!this.countedByMetrics(metricsTwins, now)) {
      const pending = state.revision.pendingResponses;
      pending[0] += successful;
      pending[3] += errors;
    }
    markDirty(state.revision, now);
  }

  private ingestMetrics(
    reporter: Reporter,
    report: MetricsClusterReport,
    position: number,
    periodMs: number | undefined,
    now: number,
    outcome: IngestOutcome,
  ): void {
    const state = this.stateFor(reporter, report.cluster, position, outcome);
    if (state === undefined) return;
    if (report.inFlight !== undefined) {
      state.inFlight = report.inFlight;
      state.inFlightAt = now;
    }
    // Envoy flushes only stats that were used; one that has not shown up yet is still zero.
    const total = report.total ?? 0;
    const classes: ClassCounts = [report.classes[0] ?? 0, report.classes[1] ?? 0, report.classes[2] ?? 0, report.classes[3] ?? 0];
    let deltaTotal: number | undefined;
    let deltaClasses: ClassCounts | undefined;
    if (reporter.countersAsDeltas) {
      deltaTotal = total;
      deltaClasses = classes;
    } else {
      // Only a stream's first flush is a baseline. Envoy flushes only used stats, so a cluster
      // new to an established stream was made (or first used) since the last flush: from zero.
      const fromZero = state.lastTotal === undefined && reporter.seq > 1;
      if (fromZero || (state.lastTotal !== undefined && state.lastClasses !== undefined)) {
        const previous = state.lastClasses ?? [0, 0, 0, 0];
        deltaTotal = counterDelta(state.lastTotal ?? 0, total);
        deltaClasses = [
          counterDelta(previous[0], classes[0]),
          counterDelta(previous[1], classes[1]),
          counterDelta(previous[2], classes[2]),
          counterDelta(previous[3], classes[3]),
        ];
      }
      state.lastTotal = total;
      // Copied into the state's own array: a decoded flush must not outlive its processing.
      if (state.lastClasses === undefined) state.lastClasses = classes;
      else for (let i = 0; i < 4; i++) state.lastClasses[i] = classes[i] as number;
    }
    state.seenSeq = reporter.seq;
    if (deltaTotal !== undefined && deltaClasses !== undefined) {
      addCounts(state.revision.pendingResponses, deltaClasses);
      if (periodMs !== undefined) setRates(state, deltaTotal, ...deltaClasses, periodMs);
    }
    markDirty(state.revision, now);
  }

  /**
   * True when the node has a fresh MetricsService stream: from its first flush on it counts every
   * cluster's responses (by class), so LRS counts are not added. Per cluster this would count
   * twice the responses LRS reported before the cluster's first flush, which counts from zero.
   */
  private countedByMetrics(metricsTwins: Set<Reporter> | undefined, now: number): boolean {
    if (metricsTwins === undefined) return false;
    for (const reporter of metricsTwins) if (this.isFresh(reporter, now)) return true;
    return false;
  }

  private stateFor(reporter: Reporter, cluster: string, position: number, outcome: IngestOutcome): ClusterState | undefined {
    const guess = reporter.order[position];
    if (guess !== undefined && !guess.dropped && guess.cluster === cluster) {
      outcome.accepted++;
      return guess;
    }
    const existing = reporter.clusters.get(cluster);
    if (existing !== undefined) {
      if (position < this.options.maxClustersPerReporter) reporter.order[position] = existing;
      outcome.accepted++;
      return existing;
    }
    const ref = this.parse(cluster);
    if (ref === undefined) {
      outcome.dropped.not_switchyard++;
      return undefined;
    }
    if (reporter.clusters.size >= this.options.maxClustersPerReporter) {
      outcome.dropped.cluster_limit++;
      return undefined;
    }
    let revision = this.revisions.get(cluster);
    if (revision === undefined) {
      if (this.revisions.size >= this.options.maxRevisions) {
        outcome.dropped.revision_limit++;
        return undefined;
      }
      revision = {
        cluster,
        ref,
        states: new Set(),
        lastPublishedAt: Number.NEGATIVE_INFINITY,
        dirtySince: undefined,
        pendingResponses: [0, 0, 0, 0],
        lastActiveAt: Number.NEGATIVE_INFINITY,
      };
      this.revisions.set(cluster, revision);
      this.revisionsChanged++;
    }
    const state: ClusterState = {
      cluster,
      dropped: false,
      reporter,
      revision,
      inFlight: 0,
      inFlightAt: Number.NEGATIVE_INFINITY,
      locality: undefined,
      localities: undefined,
      lastTotal: undefined,
      lastClasses: undefined,
      hasRates: false,
      rps: 0,
      rates: [0, 0, 0, 0],
      ratesPeriodMs: 0,
      seenSeq: 0,
    };
    reporter.clusters.set(cluster, state);
    if (position < this.options.maxClustersPerReporter) reporter.order[position] = state;
    revision.states.add(state);
    outcome.accepted++;
    return state;
  }

  private parse(cluster: string): RevisionRef | undefined {
    let ref = this.names.get(cluster);
    if (ref === undefined) {
      // Bounded: a client inventing names must not grow this without limit.
      if (this.names.size >= 4 * this.options.maxRevisions) this.names.clear();
      ref = parseClusterName(cluster) ?? null;
      this.names.set(cluster, ref);
    }
    return ref ?? undefined;
  }

  private isFresh(reporter: Reporter, now: number): boolean {
    if (reporter.lastReportAt === undefined) return false;
    const window = Math.max(this.options.staleAfterMs, Math.min(2 * reporter.periodMs, maxStaleWindowMs));
    return now - reporter.lastReportAt <= window;
  }

  /** The load of one revision now, across fresh nodes, each node counted once. */
  private load(revision: RevisionState, now: number): RevisionLoad {
    const sum: LoadSum = { concurrency: 0, rps: 0, responses: [0, 0, 0, 0], windowMs: 0, nodes: 0 };
    let shares: NodeShare[] | undefined;
    if (this.options.nodeShares === true) {
      shares = this.shares(revision, now);
      for (const share of shares) {
        sum.concurrency += share.concurrency;
        sum.rps += share.rps;
        addCounts(sum.responses, share.responses);
        sum.windowMs = Math.max(sum.windowMs, share.windowMs);
        sum.nodes++;
      }
    } else if (this.sharedNodeIds === 0) {
      // No node has more than one stream: every state is a node of its own.
      const one: ClusterState[] = [];
      for (const state of revision.states) {
        if (!this.isFresh(state.reporter, now)) continue;
        one[0] = state;
        addNode(sum, one);
      }
    } else {
      const byNode = new Map<string, ClusterState[]>();
      for (const state of revision.states) {
        if (!this.isFresh(state.reporter, now)) continue;
        const group = byNode.get(state.reporter.nodeId);
        if (group === undefined) byNode.set(state.reporter.nodeId, [state]);
        else group.push(state);
      }
      for (const group of byNode.values()) addNode(sum, group);
    }
    const { responses } = sum;
    const answered = responses[0] + responses[1] + responses[2] + responses[3];
    return {
      ref: revision.ref,
      cluster: revision.cluster,
      concurrency: sum.concurrency,
      rps: sum.rps,
      responses,
      errorRatio: answered > 0 ? Math.min(1, responses[3] / answered) : 0,
      windowMs: Math.max(1, Math.round(sum.windowMs || this.options.intervalMs)),
      nodes: sum.nodes,
      ...(shares === undefined ? {} : { shares }),
    };
  }

  /** Each fresh node's share of a revision, with the receive time of its latest report. */
  private shares(revision: RevisionState, now: number): NodeShare[] {
    const byNode = new Map<string, ClusterState[]>();
    for (const state of revision.states) {
      if (!this.isFresh(state.reporter, now)) continue;
      const group = byNode.get(state.reporter.nodeId);
      if (group === undefined) byNode.set(state.reporter.nodeId, [state]);
      else group.push(state);
    }
    return [...byNode].map(([nodeId, group]) => {
      const one: LoadSum = { concurrency: 0, rps: 0, responses: [0, 0, 0, 0], windowMs: 0, nodes: 0 };
      addNode(one, group);
      const at = Math.max(...group.map((s) => s.reporter.lastReportAt ?? 0));
      return { nodeId, at, concurrency: one.concurrency, rps: one.rps, responses: one.responses, windowMs: Math.round(one.windowMs) };
    });
  }

  /**
   * What to publish now: every revision with new reports not published for half an interval,
   * and every other revision not published for an interval. Also forgets idle revisions and
   * closed streams that went stale.
   */
  collect(now: number): Collected {
    const newlyStale: Collected['newlyStale'] = [];
    for (const reporter of [...this.reporters.values()]) {
      if (reporter.stale || reporter.lastReportAt === undefined || this.isFresh(reporter, now)) continue;
      reporter.stale = true;
      newlyStale.push({ source: reporter.source, nodeId: reporter.nodeId });
      if (!reporter.open) this.drop(reporter);
    }
    const slack = this.tickMs / 4;
    const due: PublishedLoad[] = [];
    const forgotten: Collected['forgotten'] = [];
    for (const revision of [...this.revisions.values()]) {
      const sinceLast = now - revision.lastPublishedAt;
      const isDue =
        (revision.dirtySince !== undefined && sinceLast >= this.options.intervalMs / 2 - slack) ||
        sinceLast >= this.options.intervalMs - slack;
      if (!isDue) continue;
      const load = this.load(revision, now);
      if (load.nodes > 0) {
        revision.lastActiveAt = now;
      } else if (now - revision.lastActiveAt >= this.options.revisionIdleMs && revision.dirtySince === undefined) {
        this.forget(revision);
        forgotten.push({ ref: revision.ref, cluster: revision.cluster });
        continue;
      }
      due.push({
        ...load,
        newResponses: revision.pendingResponses,
        lagMs: revision.dirtySince === undefined ? undefined : now - revision.dirtySince,
      });
      revision.pendingResponses = [0, 0, 0, 0];
      revision.dirtySince = undefined;
      revision.lastPublishedAt = now;
    }
    return { due, forgotten, newlyStale };
  }

  /** Every tracked revision's load and the per-service sums, without publishing anything. */
  view(now: number): ServiceLoad[] {
    const services = new Map<string, ServiceLoad>();
    for (const revision of this.revisions.values()) {
      const load = this.load(revision, now);
      const key = `${load.ref.tenant}/${load.ref.service}`;
      let service = services.get(key);
      if (service === undefined) {
        service = {
          tenant: load.ref.tenant,
          service: load.ref.service,
          concurrency: 0,
          rps: 0,
          responses: [0, 0, 0, 0],
          errorRatio: 0,
          revisions: [],
        };
        services.set(key, service);
      }
      service.concurrency += load.concurrency;
      service.rps += load.rps;
      addCounts(service.responses, load.responses);
      service.revisions.push(load);
    }
    for (const service of services.values()) {
      const answered = service.responses[0] + service.responses[1] + service.responses[2] + service.responses[3];
      service.errorRatio = answered > 0 ? Math.min(1, service.responses[3] / answered) : 0;
    }
    return [...services.values()];
  }

  reporterCounts(now: number): Record<Source, ReporterCounts> {
    const counts: Record<Source, ReporterCounts> = { lrs: { open: 0, fresh: 0, stale: 0 }, metrics: { open: 0, fresh: 0, stale: 0 } };
    for (const reporter of this.reporters.values()) {
      const c = counts[reporter.source];
      if (reporter.open) c.open++;
      if (reporter.lastReportAt === undefined) continue;
      if (this.isFresh(reporter, now)) c.fresh++;
      else c.stale++;
    }
    return counts;
  }

  private drop(reporter: Reporter): void {
    for (const state of [...reporter.clusters.values()]) this.dropState(state);
    reporter.order = [];
    this.reporters.delete(reporter.id);
    const streams = (this.streamsPerNode.get(reporter.nodeId) ?? 1) - 1;
    if (streams === 1) this.sharedNodeIds--;
    if (streams === 0) this.streamsPerNode.delete(reporter.nodeId);
    else this.streamsPerNode.set(reporter.nodeId, streams);
    const key = lineageKey(reporter.source, reporter.nodeId);
    const family = this.lineage.get(key);
    family?.delete(reporter);
    if (family?.size === 0) this.lineage.delete(key);
  }

  private dropState(state: ClusterState): void {
    state.dropped = true;
    state.reporter.clusters.delete(state.cluster);
    state.revision.states.delete(state);
  }

  private forget(revision: RevisionState): void {
    for (const state of [...revision.states]) this.dropState(state);
    this.revisions.delete(revision.cluster);
    this.revisionsChanged++;
  }
}

function lineageKey(source: Source, nodeId: string): string {
  return `${source}|${nodeId}`;
}
