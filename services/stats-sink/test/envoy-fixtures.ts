/**
 * Messages as Envoy and gRPC clients send them, in proto-JSON object form (snake_case, as
 * @grpc/proto-loader and protobufjs fromObject take them). MetricsService flushes follow
 * Envoy's metrics_service sink: one family per stat, one metric per family with the
 * snapshot's timestamp_ms; with emit_tags_as_labels the name is the tag-extracted name and
 * the tags are labels.
 */

export interface FamilyObject {
  name: string;
  type: 'COUNTER' | 'GAUGE' | 'SUMMARY' | 'HISTOGRAM' | 'UNTYPED' | number;
  metric: Record<string, unknown>[];
}

export interface ClusterNumbers {
  active: number;
  total: number;
  /** Cumulative (or delta) responses by class; a class left out is a stat Envoy has not used yet. */
  classes: Partial<Record<'2xx' | '3xx' | '4xx' | '5xx', number>>;
}

type Labels = Record<string, string>;

function metric(kind: 'counter' | 'gauge', value: number, timestampMs: number, labels: Labels = {}): Record<string, unknown> {
  const label = Object.entries(labels).map(([name, v]) => ({ name, value: v }));
  return { [kind]: { value }, timestamp_ms: timestampMs, ...(label.length > 0 ? { label } : {}) };
}

/** The stats of one cluster, named the way Envoy names them with tags as labels off (`tagged: false`) or on. */
export function clusterFamilies(cluster: string, numbers: ClusterNumbers, timestampMs: number, tagged: boolean): FamilyObject[] {
  const families: FamilyObject[] = [];
  const clusterLabel = { 'envoy.cluster_name': cluster };
  const counter = (stat: string, value: number, extra: Labels = {}) =>
    families.push({
      name: tagged ? `cluster.${stat}` : `cluster.${cluster}.${stat}`,
      type: 'COUNTER',
      metric: [metric('counter', value, timestampMs, tagged ? { ...clusterLabel, ...extra } : {})],
    });
  const gauge = (stat: string, value: number) =>
    families.push({
      name: tagged ? `cluster.${stat}` : `cluster.${cluster}.${stat}`,
      type: 'GAUGE',
      metric: [metric('gauge', value, timestampMs, tagged ? clusterLabel : {})],
    });
  counter('upstream_cx_total', 3);
  counter('upstream_rq_total', numbers.total);
  counter('upstream_rq_completed', numbers.total);
  for (const [codeClass, value] of Object.entries(numbers.classes)) {
    const digit = codeClass[0] as string;
    // Envoy's tag regex `_rq_(\d)xx$` turns upstream_rq_2xx into upstream_rq_xx{envoy.response_code_class="2"}.
    if (tagged) counter('upstream_rq_xx', value, { 'envoy.response_code_class': digit });
    else counter(`upstream_rq_${codeClass}`, value);
    if (tagged) counter('upstream_rq', value, { 'envoy.response_code': `${digit}00` });
    else counter(`upstream_rq_${digit}00`, value);
  }
  gauge('upstream_rq_active', numbers.active);
  gauge('upstream_cx_active', 1);
  gauge('membership_healthy', 2);
  families.push({
    name: tagged ? 'cluster.upstream_rq_time' : `cluster.${cluster}.upstream_rq_time`,
    type: 'HISTOGRAM',
    metric: [
      {
        histogram: {
          sample_count: numbers.total,
          sample_sum: numbers.total * 3,
          bucket: [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000].map((upper_bound, i) => ({
            upper_bound,
            cumulative_count: Math.min(numbers.total, i * 10),
          })),
        },
        timestamp_ms: timestampMs,
        ...(tagged ? { label: [{ name: 'envoy.cluster_name', value: cluster }] } : {}),
      },
    ],
  });
  return families;
}

/** Server-wide stats every flush carries besides the clusters'. */
export function serverFamilies(timestampMs: number): FamilyObject[] {
  return [
    { name: 'server.uptime', type: 'GAUGE', metric: [metric('gauge', 120, timestampMs)] },
    { name: 'server.memory_allocated', type: 'GAUGE', metric: [metric('gauge', 5_000_000, timestampMs)] },
    { name: 'http.ingress_http.downstream_rq_total', type: 'COUNTER', metric: [metric('counter', 1234, timestampMs)] },
    { name: 'cluster_manager.active_clusters', type: 'GAUGE', metric: [metric('gauge', 4, timestampMs)] },
  ];
}

/** A flush: the node (first message of a stream only) and every used stat. */
export function metricsMessage(
  node: Record<string, unknown> | undefined,
  clusters: Record<string, ClusterNumbers>,
  timestampMs: number,
  tagged = false,
): Record<string, unknown> {
  const envoy_metrics = [
    ...serverFamilies(timestampMs),
    ...Object.entries(clusters).flatMap(([cluster, numbers]) => clusterFamilies(cluster, numbers, timestampMs, tagged)),
  ];
  return { ...(node !== undefined ? { identifier: { node } } : {}), envoy_metrics };
}

export interface LocalityNumbers {
  zone?: string;
  inProgress: number;
  issued: number;
  successful: number;
  errors: number;
}

/** An LRS ClusterStats entry; counts are deltas over `intervalMs`. */
export function clusterStats(cluster: string, localities: LocalityNumbers[], intervalMs: number): Record<string, unknown> {
  return {
    cluster_name: cluster,
    upstream_locality_stats: localities.map((l) => ({
      locality: { region: 'local', zone: l.zone ?? 'a' },
      total_requests_in_progress: l.inProgress,
      total_issued_requests: l.issued,
      total_successful_requests: l.successful,
      total_error_requests: l.errors,
    })),
    load_report_interval: { seconds: Math.floor(intervalMs / 1000), nanos: (intervalMs % 1000) * 1e6 },
  };
}

/** A node as Envoy sends it; Envoy and grpc-js-xds both advertise send_all_clusters support on LRS. */
export function envoyNode(id: string, options: { sendAll?: boolean; metadata?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    id,
    cluster: 'edge',
    user_agent_name: 'envoy',
    ...(options.sendAll === false ? {} : { client_features: ['envoy.lrs.supports_send_all_clusters'] }),
    ...(options.metadata !== undefined ? { metadata: struct(options.metadata) } : {}),
  };
}

/** google.protobuf.Struct: protobufjs serves the well-known types with camelCase field names even with keepCase. */
function struct(values: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    fields[key] =
      typeof value === 'boolean'
        ? { boolValue: value }
        : typeof value === 'number'
          ? { numberValue: value }
          : { stringValue: String(value) };
  }
  return { fields };
}
