import { Counter, Gauge, type Registry } from 'prom-client';
import type { RevisionRef } from '@switchyard/shared';
import type { PublishedLoad } from './aggregator.js';
import { codeClasses } from './reports.js';

/** Label value of the series that revisions past the series budget fold into; not a DNS label, so no real name collides. */
export const overflowLabel = '_overflow';

/** Series one revision costs: four response classes, concurrency, reporting nodes. */
export const seriesPerRevision = codeClasses.length + 2;

type Labels = { tenant: string; service: string; revision: string };

const overflowLabels: Labels = { tenant: overflowLabel, service: overflowLabel, revision: overflowLabel };

/**
 * Per-tenant request metrics on /metrics with bounded cardinality: a revision gets its own
 * series while the budget (STATS_MAX_SERIES) lasts; later ones fold into the `_overflow`
 * series and `switchyard_stats_sink_series_overflow_total` counts them. Forgotten revisions
 * give their series back.
 */
export class TenantMetrics {
  private readonly responses: Counter<'tenant' | 'service' | 'revision' | 'code_class'>;
  private readonly concurrency: Gauge<'tenant' | 'service' | 'revision'>;
  private readonly nodes: Gauge<'tenant' | 'service' | 'revision'>;
  private readonly overflowed: Counter;
  private readonly series: Gauge;
  private readonly admitted = new Set<string>();
  /** Last concurrency and nodes of each folded revision, so the overflow gauges stay sums. */
  private readonly folded = new Map<string, { concurrency: number; nodes: number }>();
  private overflowConcurrency = 0;
  private overflowNodes = 0;

  constructor(
    registry: Registry,
    private readonly maxSeries: number,
  ) {
    const registers = [registry];
    const labelNames = ['tenant', 'service', 'revision'] as const;
    this.responses = new Counter({
      name: 'switchyard_tenant_responses_total',
      help: 'Responses by status class per revision, across the Envoy fleet (LRS successes count as 2xx, LRS errors as 5xx).',
      labelNames: [...labelNames, 'code_class'],
      registers,
    });
    this.concurrency = new Gauge({
      name: 'switchyard_tenant_concurrency',
      help: 'Requests in flight per revision, summed over the nodes reporting it.',
      labelNames,
      registers,
    });
    this.nodes = new Gauge({
      name: 'switchyard_tenant_reporting_nodes',
      help: 'Nodes (Envoys, proxyless gRPC clients) whose reports count for the revision now.',
      labelNames,
      registers,
    });
    this.overflowed = new Counter({
      name: 'switchyard_stats_sink_series_overflow_total',
      help: 'Revisions folded into the _overflow series because STATS_MAX_SERIES was reached.',
      registers,
    });
    this.series = new Gauge({
      name: 'switchyard_stats_sink_tenant_series',
      help: 'Series the switchyard_tenant_* metrics hold for admitted revisions (at most STATS_MAX_SERIES; the _overflow series come on top).',
      registers,
    });
  }

  record(load: PublishedLoad): void {
    const labels = this.labelsFor(load.cluster, load.ref);
    codeClasses.forEach((codeClass, i) => {
      const count = load.newResponses[i] ?? 0;
      // inc(0) still creates the series, so every admitted revision shows all four classes.
      this.responses.inc({ ...labels, code_class: codeClass }, count);
    });
    if (labels !== overflowLabels) {
      this.concurrency.set(labels, load.concurrency);
      this.nodes.set(labels, load.nodes);
      return;
    }
    const previous = this.folded.get(load.cluster) ?? { concurrency: 0, nodes: 0 };
    this.overflowConcurrency += load.concurrency - previous.concurrency;
    this.overflowNodes += load.nodes - previous.nodes;
    this.folded.set(load.cluster, { concurrency: load.concurrency, nodes: load.nodes });
    this.concurrency.set(overflowLabels, Math.max(0, this.overflowConcurrency));
    this.nodes.set(overflowLabels, Math.max(0, this.overflowNodes));
  }

  forget(cluster: string, ref: RevisionRef): void {
    if (this.admitted.delete(cluster)) {
      const labels = { tenant: ref.tenant, service: ref.service, revision: ref.revision };
      for (const codeClass of codeClasses) this.responses.remove({ ...labels, code_class: codeClass });
      this.concurrency.remove(labels);
      this.nodes.remove(labels);
      this.series.set(this.admitted.size * seriesPerRevision);
      return;
    }
    const previous = this.folded.get(cluster);
    if (previous === undefined) return;
    this.folded.delete(cluster);
    this.overflowConcurrency -= previous.concurrency;
    this.overflowNodes -= previous.nodes;
    this.concurrency.set(overflowLabels, Math.max(0, this.overflowConcurrency));
    this.nodes.set(overflowLabels, Math.max(0, this.overflowNodes));
  }

  private labelsFor(cluster: string, ref: RevisionRef): Labels {
    if (this.admitted.has(cluster)) return { tenant: ref.tenant, service: ref.service, revision: ref.revision };
    if (this.folded.has(cluster)) return overflowLabels;
    if ((this.admitted.size + 1) * seriesPerRevision <= this.maxSeries) {
      this.admitted.add(cluster);
      this.series.set(this.admitted.size * seriesPerRevision);
      return { tenant: ref.tenant, service: ref.service, revision: ref.revision };
    }
    this.overflowed.inc();
    this.folded.set(cluster, { concurrency: 0, nodes: 0 });
    return overflowLabels;
  }
}
