import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The stats-sink's own health on /metrics (names unique per service, see docs/stats-sink.md). */
export function createSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    streamsOpen: new Gauge({
      name: 'switchyard_stats_sink_streams_open',
      help: 'gRPC streams open now, by source (lrs, metrics).',
      labelNames: ['source'] as const,
      registers,
    }),
    messages: new Counter({
      name: 'switchyard_stats_sink_messages_total',
      help: 'Messages received on the streams, by source (including the ones then rejected).',
      labelNames: ['source'] as const,
      registers,
    }),
    clusterStats: new Counter({
      name: 'switchyard_stats_sink_cluster_stats_total',
      help: 'Per-cluster reports taken in (LRS ClusterStats; clusters found in MetricsService flushes).',
      labelNames: ['source'] as const,
      registers,
    }),
    families: new Counter({
      name: 'switchyard_stats_sink_metric_families_total',
      help: 'MetricsService metric families read.',
      registers,
    }),
    decodeErrors: new Counter({
      name: 'switchyard_stats_sink_decode_errors_total',
      help: 'Messages that were not valid protobuf of their type; the stream is closed with INVALID_ARGUMENT.',
      labelNames: ['source'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'switchyard_stats_sink_rejected_messages_total',
      help: 'Messages dropped unread or refused, by source and reason (oversized, rate_limited, missing_node).',
      labelNames: ['source', 'reason'] as const,
      registers,
    }),
    ignoredFamilies: new Counter({
      name: 'switchyard_stats_sink_ignored_metric_families_total',
      help: 'MetricsService families skipped, by reason (unknown_type, type_mismatch, invalid_value).',
      labelNames: ['reason'] as const,
      registers,
    }),
    droppedClusters: new Counter({
      name: 'switchyard_stats_sink_dropped_clusters_total',
      help: 'Cluster reports ignored, by source and reason (not_switchyard, cluster_limit, revision_limit).',
      labelNames: ['source', 'reason'] as const,
      registers,
    }),
    published: new Counter({
      name: 'switchyard_stats_sink_published_samples_total',
      help: 'Load samples published on switchyard.load.*.',
      registers,
    }),
    publishErrors: new Counter({
      name: 'switchyard_stats_sink_publish_errors_total',
      help: 'Load samples that could not be published (NATS connection closed).',
      registers,
    }),
    publishLag: new Histogram({
      name: 'switchyard_stats_sink_publish_lag_seconds',
      help: 'From the earliest report a sample includes being received to the sample being published.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5],
      registers,
    }),
    reporters: new Gauge({
      name: 'switchyard_stats_sink_reporters',
      help: 'Nodes reporting per source: fresh (counting) or stale (silent past the staleness timeout, not counting).',
      labelNames: ['source', 'state'] as const,
      registers,
    }),
    wentStale: new Counter({
      name: 'switchyard_stats_sink_reporters_stale_total',
      help: 'Times a node stopped reporting for longer than the staleness timeout.',
      labelNames: ['source'] as const,
      registers,
    }),
    revisions: new Gauge({
      name: 'switchyard_stats_sink_revisions',
      help: 'Revisions tracked by the aggregator.',
      registers,
    }),
  };
}

export type SinkMetrics = ReturnType<typeof createSinkMetrics>;
