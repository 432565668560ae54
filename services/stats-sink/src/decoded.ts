/**
 * The shapes protobufjs decodes Envoy's messages into (keepCase, so snake_case fields), as far
 * as the sink reads them. Unset scalars read as their proto defaults; 64-bit integers arrive as
 * Long objects.
 */

export type LongLike = number | string | { toNumber(): number };

export function toNumber(value: LongLike | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  return value.toNumber();
}

export interface DecodedDuration {
  seconds?: LongLike | null;
  nanos?: number | null;
}

export function durationMs(duration: DecodedDuration | null | undefined): number | undefined {
  if (duration === null || duration === undefined) return undefined;
  return toNumber(duration.seconds) * 1000 + (duration.nanos ?? 0) / 1e6;
}

/** google.protobuf.Struct: protobufjs defines the well-known types with camelCase fields, whatever keepCase says. */
export interface DecodedStruct {
  fields?: Record<string, { boolValue?: boolean | null; stringValue?: string | null } | undefined> | null;
}

export interface DecodedNode {
  id?: string | null;
  cluster?: string | null;
  metadata?: DecodedStruct | null;
  client_features?: string[] | null;
  user_agent_name?: string | null;
}

export interface DecodedLabel {
  name?: string | null;
  value?: string | null;
}

export interface DecodedValue {
  value?: number | null;
}

export interface DecodedMetric {
  label?: DecodedLabel[] | null;
  gauge?: DecodedValue | null;
  counter?: DecodedValue | null;
  untyped?: DecodedValue | null;
  timestamp_ms?: LongLike | null;
}

export interface DecodedMetricFamily {
  name?: string | null;
  type?: number | null;
  metric?: DecodedMetric[] | null;
}

export interface DecodedStreamMetricsMessage {
  identifier?: { node?: DecodedNode | null } | null;
  envoy_metrics?: DecodedMetricFamily[] | null;
}

export interface DecodedLocality {
  region?: string | null;
  zone?: string | null;
  sub_zone?: string | null;
}

export interface DecodedUpstreamLocalityStats {
  locality?: DecodedLocality | null;
  total_successful_requests?: LongLike | null;
  total_requests_in_progress?: LongLike | null;
  total_error_requests?: LongLike | null;
  total_issued_requests?: LongLike | null;
}

export interface DecodedClusterStats {
  cluster_name?: string | null;
  upstream_locality_stats?: DecodedUpstreamLocalityStats[] | null;
  load_report_interval?: DecodedDuration | null;
}

export interface DecodedLoadStatsRequest {
  node?: DecodedNode | null;
  cluster_stats?: DecodedClusterStats[] | null;
}
