import type { DecodedLabel, DecodedMetric, DecodedMetricFamily } from './decoded.js';
import { toNumber } from './decoded.js';
import type { MetricsClusterReport } from './reports.js';

/**
 * Reads the cluster stats the sink needs out of one MetricsService flush. Envoy names a stat
 * in one of two ways (metrics_service sink, `emit_tags_as_labels`):
 *
 *   off: `cluster.<cluster>.upstream_rq_active`, `cluster.<cluster>.upstream_rq_2xx`
 *   on:  `cluster.upstream_rq_active` {envoy.cluster_name="<cluster>"},
 *        `cluster.upstream_rq_xx` {envoy.cluster_name="<cluster>", envoy.response_code_class="2"}
 *
 * (the tag-extracted names follow Envoy's default tag regexes: the class regex `_rq_(\d)xx$`
 * cuts the digit out of the name and makes it the tag value).
 */

/** io.prometheus.client.MetricType values, as in the proto. */
export interface MetricTypeValues {
  COUNTER: number;
  GAUGE: number;
  SUMMARY: number;
  UNTYPED: number;
  HISTOGRAM: number;
  GAUGE_HISTOGRAM: number;
}

type StatKind = { stat: 'active' } | { stat: 'total' } | { stat: 'class'; index: number } | { stat: 'tagged_class' };

const clusterPrefix = 'cluster.';
const clusterNameTag = 'envoy.cluster_name';
const codeClassTag = 'envoy.response_code_class';

/** Stat names after `cluster.<name>.` (tags off). */
const untaggedStats = new Map<string, StatKind>([
  ['upstream_rq_active', { stat: 'active' }],
  ['upstream_rq_total', { stat: 'total' }],
  ['upstream_rq_2xx', { stat: 'class', index: 0 }],
  ['upstream_rq_3xx', { stat: 'class', index: 1 }],
  ['upstream_rq_4xx', { stat: 'class', index: 2 }],
  ['upstream_rq_5xx', { stat: 'class', index: 3 }],
]);

/** Tag-extracted names (tags on). */
const taggedStats = new Map<string, StatKind>([
  ['cluster.upstream_rq_active', { stat: 'active' }],
  ['cluster.upstream_rq_total', { stat: 'total' }],
  ['cluster.upstream_rq_xx', { stat: 'tagged_class' }],
]);

const classTagValues = new Map<string, number>([
  ['2', 0],
  ['3', 1],
  ['4', 2],
  ['5', 3],
  ['2xx', 0],
  ['3xx', 1],
  ['4xx', 2],
  ['5xx', 3],
]);

export interface MetricsReadResult {
  clusters: Map<string, MetricsClusterReport>;
  snapshotMs: number | undefined;
  families: number;
  /** Families whose type is not a MetricType value. */
  unknownTypes: number;
  /** A stat the sink reads, sent with a type it cannot be (e.g. upstream_rq_active as a histogram). */
  typeMismatches: number;
  /** NaN, infinite or negative values of stats the sink reads. */
  invalidValues: number;
}

export function readMetricFamilies(families: readonly DecodedMetricFamily[], types: MetricTypeValues): MetricsReadResult {
  const result: MetricsReadResult = {
    clusters: new Map(),
    snapshotMs: undefined,
    families: families.length,
    unknownTypes: 0,
    typeMismatches: 0,
    invalidValues: 0,
  };
  for (const family of families) {
    const type = family.type ?? types.COUNTER;
    if (type < 0 || type > types.GAUGE_HISTOGRAM || !Number.isInteger(type)) {
      result.unknownTypes++;
      continue;
    }
    const name = family.name ?? '';
    if (!name.startsWith(clusterPrefix)) continue;
    const metrics = family.metric ?? [];
    let kind = taggedStats.get(name);
    let clusterFromName: string | undefined;
    if (kind === undefined) {
      const dot = name.indexOf('.', clusterPrefix.length);
      if (dot < 0) continue;
      kind = untaggedStats.get(name.slice(dot + 1));
      if (kind === undefined) continue;
      clusterFromName = name.slice(clusterPrefix.length, dot);
    }
    const wantsGauge = kind.stat === 'active';
    const typeOk = type === types.UNTYPED || type === (wantsGauge ? types.GAUGE : types.COUNTER);
    if (!typeOk) {
      result.typeMismatches++;
      continue;
    }
    for (const metric of metrics) {
      if (result.snapshotMs === undefined && metric.timestamp_ms !== null && metric.timestamp_ms !== undefined) {
        const ts = toNumber(metric.timestamp_ms);
        if (ts > 0) result.snapshotMs = ts;
      }
      const value = metricValue(metric, type, types);
      if (value === undefined || !Number.isFinite(value) || value < 0) {
        result.invalidValues++;
        continue;
      }
      let cluster = clusterFromName;
      let classIndex = kind.stat === 'class' ? kind.index : -1;
      if (cluster === undefined || kind.stat === 'tagged_class') {
        const labels = metric.label ?? [];
        cluster ??= labelValue(labels, clusterNameTag);
        if (kind.stat === 'tagged_class') classIndex = classTagValues.get(labelValue(labels, codeClassTag) ?? '') ?? -1;
      }
      if (cluster === undefined || cluster === '') continue;
      if (kind.stat === 'tagged_class' && classIndex < 0) continue;
      let report = result.clusters.get(cluster);
      if (report === undefined) {
        report = { cluster, inFlight: undefined, total: undefined, classes: [undefined, undefined, undefined, undefined] };
        result.clusters.set(cluster, report);
      }
      if (kind.stat === 'active') report.inFlight = value;
      else if (kind.stat === 'total') report.total = value;
      else report.classes[classIndex] = value;
    }
  }
  return result;
}

function metricValue(metric: DecodedMetric, type: number, types: MetricTypeValues): number | undefined {
  const holder = type === types.GAUGE ? metric.gauge : type === types.COUNTER ? metric.counter : metric.untyped;
  if (holder === null || holder === undefined) return undefined;
  return holder.value ?? 0;
}

function labelValue(labels: readonly DecodedLabel[], name: string): string | undefined {
  for (const label of labels) if (label.name === name) return label.value ?? '';
  return undefined;
}
