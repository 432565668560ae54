/**
 * What one report says about one cluster, independent of the wire format: the aggregator's
 * input. The readers in lrs-reader.ts and metrics-reader.ts produce these from decoded protos.
 */

/** Response classes the sink tracks, in the order of {@link ClassCounts}. */
export const codeClasses = ['2xx', '3xx', '4xx', '5xx'] as const;
export type CodeClass = (typeof codeClasses)[number];

/** Counts per class, indexed like {@link codeClasses}. */
export type ClassCounts = [number, number, number, number];

export type Source = 'lrs' | 'metrics';

/** One locality of an LRS cluster report; counts are deltas since the previous report. */
export interface LrsLocalityReport {
  /** In-flight gauges are kept per locality because clients omit localities whose counts did not change. */
  region: string;
  zone: string;
  subZone: string;
  inFlight: number;
  issued: number;
  successful: number;
  errors: number;
}

export interface LrsClusterReport {
  cluster: string;
  localities: LrsLocalityReport[];
  /** `load_report_interval`: the period the counts cover, when the client says. */
  periodMs: number | undefined;
}

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
  | { source: 'lrs'; clusters: LrsClusterReport[] }
  | {
      source: 'metrics';
      clusters: Iterable<MetricsClusterReport>;
      /** Envoy's snapshot time (`timestamp_ms`), used for the period between flushes. */
      snapshotMs: number | undefined;
    };
