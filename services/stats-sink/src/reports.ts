import type { DecodedClusterStats, DecodedUpstreamLocalityStats } from './decoded.js';

/**
 * What one report says about one cluster: the aggregator's input. LRS cluster stats are taken
 * as decoded (every field the sink needs is per cluster already); MetricsService stats are
 * spread over a flush and gathered per cluster by metrics-reader.ts.
 */

/** Response classes the sink tracks, in the order of {@link ClassCounts}. */
export const codeClasses = ['2xx', '3xx', '4xx', '5xx'] as const;
export type CodeClass = (typeof codeClasses)[number];

/** Counts per class, indexed like {@link codeClasses}. */
export type ClassCounts = [number, number, number, number];

export type Source = 'lrs' | 'metrics';

/**
 * An LRS ClusterStats as protobufjs decodes it (load_report.proto), taken as is: per locality,
 * `total_requests_in_progress` is a gauge and the issued/successful/error counts are deltas
 * over `load_report_interval`. (Per-endpoint stats, when asked for, split the same numbers by
 * endpoint, so they are not added again.)
 */
export type LrsClusterReport = DecodedClusterStats;
export type LrsLocalityReport = DecodedUpstreamLocalityStats;

/**
 * One cluster's stats from one MetricsService flush. Counters are cumulative or deltas
 * depending on the node's `report_counters_as_deltas`; undefined means "not in this flush".
 */
export interface MetricsClusterReport {
  cluster: string;
  /** upstream_rq_active */
  inFlight: number | undefined;
  /** upstream_rq_total */
  total: number | undefined;
  /** upstream_rq_2xx … upstream_rq_5xx */
  classes: [number | undefined, number | undefined, number | undefined, number | undefined];
}

export type Report =
  | { source: 'lrs'; clusters: readonly LrsClusterReport[] }
  | {
      source: 'metrics';
      clusters: Iterable<MetricsClusterReport>;
      /** Envoy's snapshot time (`timestamp_ms`), used for the period between flushes. */
      snapshotMs: number | undefined;
    };
