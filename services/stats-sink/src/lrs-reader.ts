import type { DecodedClusterStats } from './decoded.js';
import { durationMs, toNumber } from './decoded.js';
import type { LrsClusterReport, LrsLocalityReport } from './reports.js';

/**
 * Reads LRS ClusterStats (load_report.proto): per locality, `total_requests_in_progress` is a
 * gauge and the issued/successful/error counts are deltas over `load_report_interval`.
 * Cluster-level totals are the sums over localities (the proto says so); per-endpoint stats,
 * when asked for, repeat the same numbers split by endpoint, so they are not added again.
 */
export function readClusterStats(stats: readonly DecodedClusterStats[]): LrsClusterReport[] {
  const reports: LrsClusterReport[] = [];
  for (const cluster of stats) {
    const name = cluster.cluster_name ?? '';
    if (name === '') continue;
    const localities: LrsLocalityReport[] = [];
    for (const l of cluster.upstream_locality_stats ?? []) {
      localities.push({
        region: l.locality?.region ?? '',
        zone: l.locality?.zone ?? '',
        subZone: l.locality?.sub_zone ?? '',
        inFlight: toNumber(l.total_requests_in_progress),
        issued: toNumber(l.total_issued_requests),
        successful: toNumber(l.total_successful_requests),
        errors: toNumber(l.total_error_requests),
      });
    }
    reports.push({ cluster: name, localities, periodMs: durationMs(cluster.load_report_interval) });
  }
  return reports;
}
