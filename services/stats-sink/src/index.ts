/**
 * stats-sink: takes Envoy's MetricsService stream and LRS load reports from the whole fleet,
 * aggregates them per revision (src/aggregator.ts) and publishes the load on
 * `switchyard.load.<tenant>.<service>.<revision>` and on /metrics.
 */
import { hostname } from 'node:os';
import {
  publish,
  subscribe,
  type LoadPartial,
  type LoadSample,
  type Runtime,
  type ServiceHandle,
  type ServiceModule,
  type StatsSinkConfig,
} from '@switchyard/shared';
import { LoadAggregator, type PublishedLoad } from './load-aggregator.js';
import { IngestServer } from './ingest-server.js';
import { createSinkMetrics } from './sink-metrics.js';
import { TenantMetrics } from './tenant-metrics.js';
import { loadWire } from './wire.js';
import { ReplicaMerge } from './replica-merge.js';
import type { ClassCounts } from './reports.js';

export { LoadAggregator, type AggregatorOptions, type PublishedLoad, type RevisionLoad, type ServiceLoad } from './load-aggregator.js';
export { readMetricFamilies, type MetricTypeValues } from './metrics-reader.js';
export { loadWire, type Wire } from './wire.js';
export { countersAsDeltasMetadataKey } from './ingest-server.js';
export { overflowLabel, seriesPerRevision } from './tenant-metrics.js';

export type StatsSinkSettings = Pick<
  StatsSinkConfig,
  | 'LOAD_REPORTING_INTERVAL_MS'
  | 'STATS_STALE_AFTER_MS'
  | 'STATS_MAX_SERIES'
  | 'STATS_MAX_MESSAGE_BYTES'
  | 'STATS_MAX_STREAM_MESSAGES_PER_S'
  | 'STATS_MAX_CLUSTERS_PER_STREAM'
  | 'STATS_MAX_REVISIONS'
  | 'STATS_REVISION_IDLE_MS'
  | 'STATS_COUNTERS_AS_DELTAS'
  | 'LRS_ENDPOINT_GRANULARITY'
> &
  Partial<Pick<StatsSinkConfig, 'STATS_SINK_REPLICATED' | 'STATS_SINK_REPLICA_ID'>>;

export interface StatsSinkOptions {
  /** Milliseconds since the epoch; tests and the benchmark may replace it. */
  clock?: () => number;
  /** Called after each sample is published (the benchmark measures lag with it). */
  onPublished?: (load: PublishedLoad) => void;
}

export function createStatsSinkService(config: StatsSinkSettings, options: StatsSinkOptions = {}): ServiceModule {
  return {
    name: 'stats-sink',
    start: async (runtime) => startStatsSink(config, options, runtime),
  };
}

function startStatsSink(config: StatsSinkSettings, options: StatsSinkOptions, runtime: Runtime): ServiceHandle {
  const clock = options.clock ?? Date.now;
  const { logger, observability, nc } = runtime;
  const metrics = createSinkMetrics(observability.registry);
  const tenants = new TenantMetrics(observability.registry, config.STATS_MAX_SERIES);
  const aggregator = new LoadAggregator({
    intervalMs: config.LOAD_REPORTING_INTERVAL_MS,
    staleAfterMs: config.STATS_STALE_AFTER_MS,
    maxClustersPerReporter: config.STATS_MAX_CLUSTERS_PER_STREAM,
    maxRevisions: config.STATS_MAX_REVISIONS,
    revisionIdleMs: config.STATS_REVISION_IDLE_MS,
    nodeShares: config.STATS_SINK_REPLICATED === true,
  });
  const publishLoad = config.STATS_SINK_REPLICATED === true ? replicatedPublisher(config, runtime, clock) : undefined;
  const ingest = new IngestServer({
    aggregator,
    metrics,
    logger,
    wire: loadWire(),
    clock,
    limits: { maxMessageBytes: config.STATS_MAX_MESSAGE_BYTES, maxMessagesPerSecond: config.STATS_MAX_STREAM_MESSAGES_PER_S },
    intervalMs: config.LOAD_REPORTING_INTERVAL_MS,
    endpointGranularity: config.LRS_ENDPOINT_GRANULARITY,
    countersAsDeltas: config.STATS_COUNTERS_AS_DELTAS,
  });
  ingest.register(runtime.grpcServer);

  const tick = () => {
    const now = clock();
    const collected = aggregator.collect(now);
    for (const load of collected.due) {
      try {
        if (publishLoad === undefined) publish(nc, 'load', toSample(load, now));
        else publishLoad(load, now);
        metrics.published.inc();
      } catch (err) {
        metrics.publishErrors.inc();
        logger.warn({ err, revision: load.cluster }, 'cannot publish load sample');
      }
      if (load.lagMs !== undefined) metrics.publishLag.observe(load.lagMs / 1000);
      tenants.record(load);
      options.onPublished?.(load);
    }
    for (const { cluster } of collected.forgotten) tenants.forget(cluster);
    for (const { source, nodeId } of collected.newlyStale) {
      metrics.wentStale.inc({ source });
      logger.warn({ source, node: nodeId }, 'node stopped reporting; its load no longer counts');
    }
    const counts = aggregator.reporterCounts(now);
    for (const source of ['lrs', 'metrics'] as const) {
      metrics.reporters.set({ source, state: 'fresh' }, counts[source].fresh);
      metrics.reporters.set({ source, state: 'stale' }, counts[source].stale);
    }
    metrics.revisions.set(aggregator.revisionCount);
  };
  const timer = setInterval(tick, aggregator.tickMs);
  observability.health.set('stats-sink', () => ({ streams: ingest.openStreams, revisions: aggregator.revisionCount }));
  logger.info(
    { intervalMs: config.LOAD_REPORTING_INTERVAL_MS, staleAfterMs: config.STATS_STALE_AFTER_MS },
    'stats-sink serving MetricsService and LoadReportingService',
  );

  return {
    adminRoutes: (app) => {
      app.get('/v1/load', async () => {
        const now = clock();
        const services = aggregator.view(now).map((service) => ({
          ...service,
          responses: byClass(service.responses),
          revisions: service.revisions.map((r) => ({ ...r, responses: byClass(r.responses) })),
        }));
        return { ts: now, services };
      });
    },
    stop: async () => {
      clearInterval(timer);
      ingest.closeAll();
    },
  };
}

/**
 * With several replicas: publishes this replica's per-node share, folds in the others'
 * shares, and publishes the fleet total where this replica is the revision's publisher.
 */
function replicatedPublisher(config: StatsSinkSettings, runtime: Runtime, clock: () => number): (load: PublishedLoad, now: number) => void {
  const { nc, logger, observability } = runtime;
  const merge = new ReplicaMerge(config.STATS_SINK_REPLICA_ID ?? `${hostname()}-${process.pid}`);
  // A partial counts for two staleness windows: long enough to bridge a late tick, short enough to drop a dead replica's share.
  const freshForMs = 2 * Math.max(config.STATS_STALE_AFTER_MS, config.LOAD_REPORTING_INTERVAL_MS);
  subscribe(nc, 'loadpart', 'switchyard.loadpart.>', { logger, registry: observability.registry }, (m) => {
    if (m.payload.replica !== merge.replica) merge.add(m.payload);
  });
  return (load, now) => {
    const partial: LoadPartial = {
      schemaVersion: 1,
      ...load.ref,
      replica: merge.replica,
      ts: now,
      freshForMs,
      nodes: (load.shares ?? []).map((s) => ({
        node: s.nodeId,
        at: s.at,
        concurrency: s.concurrency,
        rps: s.rps,
        responses: byClass(s.responses),
        windowMs: Math.max(1, s.windowMs || config.LOAD_REPORTING_INTERVAL_MS),
      })),
    };
    publish(nc, 'loadpart', partial);
    merge.add(partial);
    if (!merge.publishes(load.ref, clock())) return;
    const total = merge.merged(load.ref, clock());
    if (total !== undefined) publish(nc, 'load', total);
  };
}

function toSample(load: PublishedLoad, now: number): LoadSample {
  return {
    schemaVersion: 1,
    tenant: load.ref.tenant,
    service: load.ref.service,
    revision: load.ref.revision,
    concurrency: load.concurrency,
    rps: load.rps,
    responses: byClass(load.responses),
    errorRatio: load.errorRatio,
    windowMs: load.windowMs,
    ts: now,
    nodes: load.nodes,
  };
}

function byClass(counts: ClassCounts): LoadSample['responses'] {
  return { '2xx': counts[0], '3xx': counts[1], '4xx': counts[2], '5xx': counts[3] };
}
