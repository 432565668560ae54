import { Counter, Gauge, type Registry } from 'prom-client';
import type { RevisionRef } from '@switchyard/shared';
import type { PublishedLoad } from './load-aggregator.js';
import { codeClasses, type ClassCounts } from './reports.js';

/** Label value of the series that revisions past the series budget fold into; not a DNS label, so no real name collides. */
export const overflowLabel = '_overflow';

/** Series one revision costs: four response classes, concurrency, reporting nodes. */
export const seriesPerRevision = codeClasses.length + 2;

type Labels = { tenant: string; service: string; revision: string };

/** One label set's numbers: responses not yet added to the counter, and the latest gauges. */
interface Series {
  labels: Labels;
  classLabels: (Labels & { code_class: string })[];
  pending: ClassCounts;
  concurrency: number;
  nodes: number;
}

function newSeries(labels: Labels): Series {
  return { labels, classLabels: codeClasses.map((c) => ({ ...labels, code_class: c })), pending: [0, 0, 0, 0], concurrency: 0, nodes: 0 };
}

const overflowLabels: Labels = { tenant: overflowLabel, service: overflowLabel, revision: overflowLabel };

/**
 * Per-tenant request metrics on /metrics with bounded cardinality: a revision gets its own
 * series while the budget (STATS_MAX_SERIES) lasts; later ones fold into the `_overflow`
 * series and `switchyard_stats_sink_series_overflow_total` counts them. Forgotten revisions
 * give their series back.
 *
 * Recording only updates plain numbers; prom-client's label handling runs when /metrics is
 * scraped (its collect hooks), not for every sample the sink publishes.
 */
export class TenantMetrics {
  private readonly responses: Counter<'tenant' | 'service' | 'revision' | 'code_class'>;
  private readonly concurrency: Gauge<'tenant' | 'service' | 'revision'>;
  private readonly nodes: Gauge<'tenant' | 'service' | 'revision'>;
  private readonly overflowed: Counter;
  private readonly admitted = new Map<string, Series>();
  /** Last concurrency and nodes of each folded revision, so the overflow gauges stay sums. */
  private readonly folded = new Map<string, { concurrency: number; nodes: number }>();
  private readonly overflow = newSeries(overflowLabels);
  private overflowUsed = false;

  constructor(
    registry: Registry,
    private readonly maxSeries: number,
  ) {
    const registers = [registry];
    const labelNames = ['tenant', 'service', 'revision'] as const;
    // The collect hooks run with `this` bound to their metric; they reach this object's series through arrows.
    const labelled = () => this.labelled();
    const admittedSeries = () => this.admitted.size * seriesPerRevision;
    this.responses = new Counter({
      name: 'switchyard_tenant_responses_total',
      help: 'Responses by status class per revision, across the Envoy fleet (LRS successes count as 2xx, LRS errors as 5xx).',
      labelNames: [...labelNames, 'code_class'],
      registers,
      collect() {
        for (const series of labelled()) {
          series.classLabels.forEach((labels, i) => this.inc(labels, series.pending[i] ?? 0));
          series.pending = [0, 0, 0, 0];
        }
      },
    });
    this.concurrency = new Gauge({
      name: 'switchyard_tenant_concurrency',
      help: 'Requests in flight per revision, summed over the nodes reporting it.',
      labelNames,
      registers,
      collect() {
        for (const series of labelled()) this.set(series.labels, series.concurrency);
      },
    });
    this.nodes = new Gauge({
      name: 'switchyard_tenant_reporting_nodes',
      help: 'Nodes (Envoys, proxyless gRPC clients) whose reports count for the revision now.',
      labelNames,
      registers,
      collect() {
        for (const series of labelled()) this.set(series.labels, series.nodes);
      },
    });
    this.overflowed = new Counter({
      name: 'switchyard_stats_sink_series_overflow_total',
      help: 'Revisions folded into the _overflow series because STATS_MAX_SERIES was reached.',
      registers,
    });
    new Gauge({
      name: 'switchyard_stats_sink_tenant_series',
      help: 'Series the switchyard_tenant_* metrics hold for admitted revisions (at most STATS_MAX_SERIES; the _overflow series come on top).',
      registers,
      collect() {
        this.set(admittedSeries());
      },
    });
  }

  record(load: PublishedLoad): void {
    const series = this.seriesFor(load.cluster, load.ref);
    if (series !== undefined) {
      addInto(series.pending, load.newResponses);
      series.concurrency = load.concurrency;
      series.nodes = load.nodes;
      return;
    }
    this.overflowUsed = true;
    addInto(this.overflow.pending, load.newResponses);
    const previous = this.folded.get(load.cluster) ?? { concurrency: 0, nodes: 0 };
    this.overflow.concurrency += load.concurrency - previous.concurrency;
    this.overflow.nodes += load.nodes - previous.nodes;
    this.folded.set(load.cluster, { concurrency: load.concurrency, nodes: load.nodes });
  }

  forget(cluster: string): void {
    const series = this.admitted.get(cluster);
    if (series !== undefined) {
      this.admitted.delete(cluster);
      for (const labels of series.classLabels) this.responses.remove(labels);
      this.concurrency.remove(series.labels);
      this.nodes.remove(series.labels);
      return;
    }
    const previous = this.folded.get(cluster);
    if (previous === undefined) return;
    this.folded.delete(cluster);
    this.overflow.concurrency -= previous.concurrency;
    this.overflow.nodes -= previous.nodes;
  }

  /** The revision's own series while the budget lasts; undefined when it folds into _overflow. */
  private seriesFor(cluster: string, ref: RevisionRef): Series | undefined {
    const existing = this.admitted.get(cluster);
    if (existing !== undefined) return existing;
    if (this.folded.has(cluster)) return undefined;
    if ((this.admitted.size + 1) * seriesPerRevision > this.maxSeries) {
      this.overflowed.inc();
      this.folded.set(cluster, { concurrency: 0, nodes: 0 });
      return undefined;
    }
    const series = newSeries({ tenant: ref.tenant, service: ref.service, revision: ref.revision });
    this.admitted.set(cluster, series);
    return series;
  }

  private *labelled(): Iterable<Series> {
    yield* this.admitted.values();
    if (this.overflowUsed) yield this.overflow;
  }
}

function addInto(into: ClassCounts, add: ClassCounts): void {
  for (let i = 0; i < 4; i++) into[i] = (into[i] as number) + (add[i] as number);
}
