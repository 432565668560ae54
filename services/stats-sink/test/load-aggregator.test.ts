import { describe, expect, it } from 'vitest';
import { LoadAggregator, type AggregatorOptions, type RevisionLoad } from '../src/load-aggregator.js';
import type { ClassCounts, LrsClusterReport, LrsLocalityReport, MetricsClusterReport, Report, Source } from '../src/reports.js';

const options: AggregatorOptions = {
  intervalMs: 1000,
  staleAfterMs: 5000,
  maxClustersPerReporter: 3,
  maxRevisions: 4,
  revisionIdleMs: 60_000,
};

const blue = 'sy_acme_api_blue';
const green = 'sy_acme_api_green';

/** An LRS ClusterStats in its decoded shape (counts may be numbers or Longs), one locality. */
function lrsCluster(
  cluster: string,
  c: { inFlight?: number; issued?: number; ok?: number; errors?: number; periodMs?: number; locality?: string },
): LrsClusterReport {
  return {
    cluster_name: cluster,
    load_report_interval: { seconds: Math.floor((c.periodMs ?? 1000) / 1000), nanos: ((c.periodMs ?? 1000) % 1000) * 1e6 },
    upstream_locality_stats: [locality(c.locality ?? 'z', c.inFlight ?? 0, c.issued ?? 0, c.ok ?? 0, c.errors ?? 0)],
  };
}

function locality(zone: string, inFlight: number, issued: number, ok: number, errors: number): LrsLocalityReport {
  return {
    locality: { region: 'r', zone },
    total_requests_in_progress: inFlight,
    total_issued_requests: issued,
    total_successful_requests: ok,
    total_error_requests: errors,
  };
}

function lrs(...clusters: LrsClusterReport[]): Report {
  return { source: 'lrs', clusters };
}

function metricsCluster(
  cluster: string,
  c: { active?: number; total?: number; c2?: number; c3?: number; c4?: number; c5?: number },
): MetricsClusterReport {
  return { cluster, inFlight: c.active, total: c.total, classes: [c.c2, c.c3, c.c4, c.c5] };
}

function metrics(snapshotMs: number | undefined, ...clusters: MetricsClusterReport[]): Report {
  return { source: 'metrics', clusters, snapshotMs };
}

type Step =
  | { at: number; open: string; source: Source; node: string; deltas?: boolean }
  | { at: number; close: string }
  | { at: number; report: string; data: Report };

function play(steps: Step[], opts: AggregatorOptions = options): LoadAggregator {
  const aggregator = new LoadAggregator(opts);
  for (const step of steps) {
    if ('open' in step) aggregator.open(step.open, step.source, step.node, { countersAsDeltas: step.deltas ?? false });
    else if ('close' in step) aggregator.close(step.close);
    else aggregator.ingest(step.report, step.data, step.at);
  }
  return aggregator;
}

function loadOf(aggregator: LoadAggregator, now: number, cluster = blue): RevisionLoad | undefined {
  return aggregator
    .view(now)
    .flatMap((service) => service.revisions)
    .find((r) => r.cluster === cluster);
}

const idle = { concurrency: 0, rps: 0, responses: [0, 0, 0, 0] as ClassCounts, errorRatio: 0, nodes: 0 };

describe('LoadAggregator', () => {
  const table: { label: string; steps: Step[]; now: number; cluster?: string; want: Partial<RevisionLoad> | undefined }[] = [
    {
      label: 'one LRS node: gauge, rates over load_report_interval, success as 2xx and errors as 5xx',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 5, issued: 20, ok: 16, errors: 4, periodMs: 2000 })) },
      ],
      now: 1000,
      want: { concurrency: 5, rps: 10, responses: [8, 0, 0, 2], errorRatio: 0.2, nodes: 1, windowMs: 2000 },
    },
    {
      label: 'concurrency and rates sum over nodes',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 0, open: 's2', source: 'lrs', node: 'n2' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 3, issued: 10, ok: 10 })) },
        { at: 1100, report: 's2', data: lrs(lrsCluster(blue, { inFlight: 4, issued: 5, ok: 5 })) },
      ],
      now: 1200,
      want: { concurrency: 7, rps: 15, responses: [15, 0, 0, 0], nodes: 2 },
    },
    {
      label: 'an LRS report that leaves a cluster out keeps its gauge and ends its rates',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 6, issued: 6, ok: 6 }), lrsCluster(green, { issued: 1, ok: 1 })) },
        { at: 2000, report: 's1', data: lrs(lrsCluster(green, { issued: 1, ok: 1 })) },
      ],
      now: 2000,
      want: { concurrency: 6, rps: 0, responses: [0, 0, 0, 0], nodes: 1 },
    },
    {
      label: 'LRS in-flight is kept per locality; a report with one locality does not erase the other',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 4, issued: 4, locality: 'a' })) },
        { at: 2000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 2, issued: 2, locality: 'b' })) },
      ],
      now: 2000,
      want: { concurrency: 6, rps: 2 },
    },
    {
      label: 'LRS localities reported together are summed; one left out later keeps its gauge',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        {
          at: 1000,
          report: 's1',
          data: lrs({
            cluster_name: blue,
            load_report_interval: { seconds: 1, nanos: 0 },
            upstream_locality_stats: [locality('a', 2, 1, 1, 0), locality('b', 3, 1, 1, 0)],
          }),
        },
        { at: 2000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 1, issued: 1, locality: 'a' })) },
      ],
      now: 2000,
      want: { concurrency: 4, rps: 1 },
    },
    {
      label: 'a node silent past the staleness timeout stops counting (its gauge does not stick)',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 0, open: 's2', source: 'lrs', node: 'n2' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 9, issued: 9 })) },
        { at: 1000, report: 's2', data: lrs(lrsCluster(blue, { inFlight: 1, issued: 1 })) },
        { at: 7000, report: 's2', data: lrs(lrsCluster(blue, { inFlight: 1, issued: 1 })) },
      ],
      now: 7000,
      want: { concurrency: 1, nodes: 1 },
    },
    {
      label: 'every node stale: zeros',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 9, issued: 9 })) },
      ],
      now: 6001,
      want: idle,
    },
    {
      label: 'MetricsService cumulative counters: the first flush is a baseline, rates come from the second',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(blue, { active: 3, total: 100, c2: 90, c5: 10 })) },
      ],
      now: 1000,
      want: { concurrency: 3, rps: 0, responses: [0, 0, 0, 0], nodes: 1 },
    },
    {
      label: 'MetricsService cumulative counters over Envoy snapshot times; a class seen for the first time counts from zero',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(blue, { active: 3, total: 100, c2: 90, c5: 10 })) },
        { at: 6000, report: 'm1', data: metrics(15_000, metricsCluster(blue, { active: 2, total: 150, c2: 120, c4: 10, c5: 20 })) },
      ],
      now: 6000,
      want: { concurrency: 2, rps: 10, responses: [6, 0, 2, 2], errorRatio: 0.2, windowMs: 5000 },
    },
    {
      label: 'a cluster new to an established MetricsService stream counts from zero (Envoy flushes only used stats)',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(green, { active: 0 })) },
        {
          at: 2000,
          report: 'm1',
          data: metrics(11_000, metricsCluster(green, { active: 0 }), metricsCluster(blue, { total: 30, c2: 20, c4: 6, c5: 4 })),
        },
      ],
      now: 2000,
      want: { rps: 30, responses: [20, 0, 6, 4], errorRatio: 4 / 30 },
    },
    {
      label: 'a counter that goes down was reset and counts from zero',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(blue, { total: 1000, c2: 1000 })) },
        { at: 2000, report: 'm1', data: metrics(11_000, metricsCluster(blue, { total: 40, c2: 40 })) },
      ],
      now: 2000,
      want: { rps: 40, responses: [40, 0, 0, 0] },
    },
    {
      label: 'report_counters_as_deltas: every flush is a delta, rates from the first period known',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1', deltas: true },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(blue, { total: 7, c2: 7 })) },
        { at: 3000, report: 'm1', data: metrics(12_000, metricsCluster(blue, { total: 8, c2: 6, c3: 2 })) },
      ],
      now: 3000,
      want: { rps: 4, responses: [3, 1, 0, 0] },
    },
    {
      label: 'a cluster missing from a MetricsService flush is gone from that Envoy',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(10_000, metricsCluster(blue, { active: 5 }), metricsCluster(green, { active: 1 })) },
        { at: 2000, report: 'm1', data: metrics(11_000, metricsCluster(green, { active: 1 })) },
      ],
      now: 2000,
      want: { ...idle, windowMs: 1000 },
    },
    {
      label: 'one node over LRS and MetricsService is counted once: rates from MetricsService, gauge from the fresher report',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 0, open: 'l1', source: 'lrs', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(1000, metricsCluster(blue, { active: 8, total: 100, c2: 100 })) },
        { at: 2000, report: 'm1', data: metrics(2000, metricsCluster(blue, { active: 8, total: 110, c2: 105, c4: 5 })) },
        { at: 2500, report: 'l1', data: lrs(lrsCluster(blue, { inFlight: 9, issued: 11, ok: 11 })) },
      ],
      now: 2500,
      want: { concurrency: 9, rps: 10, responses: [5, 0, 5, 0], nodes: 1 },
    },
    {
      label: 'LRS rates stand in for a node whose MetricsService has no rates yet',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 0, open: 'l1', source: 'lrs', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(1000, metricsCluster(blue, { active: 8, total: 100, c2: 100 })) },
        { at: 1500, report: 'l1', data: lrs(lrsCluster(blue, { inFlight: 7, issued: 3, ok: 2, errors: 1 })) },
        { at: 1600, report: 'm1', data: metrics(1000, metricsCluster(blue, { active: 6, total: 100, c2: 100 })) },
      ],
      now: 1600,
      want: { concurrency: 6, rps: 3, responses: [2, 0, 0, 1], nodes: 1 },
    },
    {
      label: 'a reconnect adopts the closed stream: cumulative baselines carry over',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(1000, metricsCluster(blue, { active: 1, total: 100, c2: 100 })) },
        { at: 1500, close: 'm1' },
        { at: 1600, open: 'm2', source: 'metrics', node: 'e1' },
        { at: 2000, report: 'm2', data: metrics(2000, metricsCluster(blue, { active: 2, total: 130, c2: 130 })) },
      ],
      now: 2000,
      want: { concurrency: 2, rps: 30, nodes: 1 },
    },
    {
      label: 'a closed stream keeps counting until stale',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 4, issued: 4 })) },
        { at: 1200, close: 's1' },
      ],
      now: 5000,
      want: { concurrency: 4, nodes: 1 },
    },
    {
      label: 'a closed stream is dropped at once when another open stream of that node replaced it',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'n1' },
        { at: 0, open: 's2', source: 'lrs', node: 'n1' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 4, issued: 4 })) },
        { at: 1000, report: 's2', data: lrs(lrsCluster(blue, { inFlight: 1, issued: 1 })) },
        { at: 1200, close: 's1' },
      ],
      now: 1500,
      want: { concurrency: 1, nodes: 1 },
    },
    {
      label: 'two open LRS streams with one node id are two processes: summed, one node',
      steps: [
        { at: 0, open: 's1', source: 'lrs', node: 'shared' },
        { at: 0, open: 's2', source: 'lrs', node: 'shared' },
        { at: 1000, report: 's1', data: lrs(lrsCluster(blue, { inFlight: 4, issued: 4 })) },
        { at: 1000, report: 's2', data: lrs(lrsCluster(blue, { inFlight: 1, issued: 1 })) },
      ],
      now: 1000,
      want: { concurrency: 5, rps: 5, nodes: 1 },
    },
    {
      label: 'a MetricsService reporter flushing every 5 s stays fresh for two of its periods',
      steps: [
        { at: 0, open: 'm1', source: 'metrics', node: 'e1' },
        { at: 1000, report: 'm1', data: metrics(1000, metricsCluster(blue, { active: 2 })) },
        { at: 6000, report: 'm1', data: metrics(6000, metricsCluster(blue, { active: 2 })) },
      ],
      now: 15_000,
      want: { concurrency: 2, nodes: 1 },
    },
  ];

  for (const { label, steps, now, cluster, want } of table) {
    it(label, () => {
      const aggregator = play(steps);
      const got = loadOf(aggregator, now, cluster);
      if (want === undefined) expect(got).toBeUndefined();
      else expect(got).toMatchObject(want);
    });
  }

  it('drops clusters that are not Switchyard revisions, past the per-stream limit and past the revision limit', () => {
    const aggregator = new LoadAggregator(options);
    aggregator.open('s1', 'lrs', 'n1', { countersAsDeltas: false });
    const first = aggregator.ingest(
      's1',
      lrs(
        lrsCluster('outbound|80||api.local', {}),
        lrsCluster('sy_a_b_c1', {}),
        lrsCluster('sy_a_b_c2', {}),
        lrsCluster('sy_a_b_c3', {}),
        lrsCluster('sy_a_b_c4', {}),
      ),
      0,
    );
    expect(first).toEqual({ accepted: 3, dropped: { not_switchyard: 1, cluster_limit: 1, revision_limit: 0 } });
    aggregator.open('s2', 'lrs', 'n2', { countersAsDeltas: false });
    const second = aggregator.ingest('s2', lrs(lrsCluster('sy_a_b_c4', {}), lrsCluster('sy_a_b_c5', {})), 0);
    expect(second).toEqual({ accepted: 1, dropped: { not_switchyard: 0, cluster_limit: 0, revision_limit: 1 } });
    expect(aggregator.revisionCount).toBe(4);
  });

  it('ignores reports of streams it does not know', () => {
    const aggregator = new LoadAggregator(options);
    expect(aggregator.ingest('nope', lrs(lrsCluster(blue, { inFlight: 1 })), 0).accepted).toBe(0);
    expect(aggregator.view(0)).toEqual([]);
  });

  it('sums revisions into their service', () => {
    const aggregator = play([
      { at: 0, open: 's1', source: 'lrs', node: 'n1' },
      {
        at: 1000,
        report: 's1',
        data: lrs(
          lrsCluster(blue, { inFlight: 2, issued: 4, ok: 3, errors: 1 }),
          lrsCluster(green, { inFlight: 3, issued: 6, ok: 6 }),
          lrsCluster('sy_other_web_v1', { inFlight: 1 }),
        ),
      },
    ]);
    const services = aggregator.view(1000);
    const api = services.find((s) => s.service === 'api');
    expect(api).toMatchObject({ tenant: 'acme', concurrency: 5, rps: 10, responses: [9, 0, 0, 1], errorRatio: 0.1 });
    expect(api?.revisions.map((r) => r.ref.revision).sort()).toEqual(['blue', 'green']);
    expect(services.find((s) => s.tenant === 'other')?.concurrency).toBe(1);
  });
});

describe('LoadAggregator.collect', () => {
  function started(): LoadAggregator {
    const aggregator = new LoadAggregator(options);
    aggregator.open('s1', 'lrs', 'n1', { countersAsDeltas: false });
    return aggregator;
  }

  it('publishes a new report within half an interval and drains the response counts', () => {
    const aggregator = started();
    aggregator.ingest('s1', lrs(lrsCluster(blue, { inFlight: 2, issued: 5, ok: 4, errors: 1 })), 100);
    const first = aggregator.collect(500);
    expect(first.due).toHaveLength(1);
    expect(first.due[0]).toMatchObject({ concurrency: 2, newResponses: [4, 0, 0, 1], lagMs: 400, ref: { revision: 'blue' } });
    // Nothing new: not due again before a full interval.
    expect(aggregator.collect(1000).due).toHaveLength(0);
    const heartbeat = aggregator.collect(1500).due;
    expect(heartbeat).toHaveLength(1);
    expect(heartbeat[0]).toMatchObject({ concurrency: 2, newResponses: [0, 0, 0, 0], lagMs: undefined });
    // A report right after a publish waits for the next half interval only.
    aggregator.ingest('s1', lrs(lrsCluster(blue, { inFlight: 3, issued: 1, ok: 1 })), 1600);
    expect(aggregator.collect(1750).due).toHaveLength(0);
    expect(aggregator.collect(2000).due[0]).toMatchObject({ concurrency: 3, lagMs: 400, newResponses: [1, 0, 0, 0] });
  });

  it('does not count LRS responses twice for a node whose MetricsService reports the cluster', () => {
    const aggregator = started();
    aggregator.open('m1', 'metrics', 'n1', { countersAsDeltas: true });
    aggregator.ingest('m1', metrics(1000, metricsCluster(blue, { total: 1, c2: 1 })), 0);
    aggregator.ingest('m1', metrics(2000, metricsCluster(blue, { total: 10, c2: 10 })), 1000);
    aggregator.ingest('s1', lrs(lrsCluster(blue, { issued: 10, ok: 10 })), 1100);
    expect(aggregator.collect(1500).due[0]?.newResponses).toEqual([11, 0, 0, 0]);
  });

  it('takes response counts from LRS until the MetricsService stream has flushed, then from MetricsService only', () => {
    const aggregator = started();
    aggregator.open('m1', 'metrics', 'n1', { countersAsDeltas: false });
    aggregator.ingest('s1', lrs(lrsCluster(blue, { issued: 5, ok: 5 })), 100);
    // The first flush is the baseline (it holds the 5 LRS counted); later LRS counts are not added.
    aggregator.ingest('m1', metrics(500, metricsCluster(blue, { total: 5, c2: 5 })), 500);
    aggregator.ingest('s1', lrs(lrsCluster(blue, { issued: 3, ok: 3 })), 700);
    // 404s are successes to LRS; MetricsService tells them apart. Green is new: it counts from zero.
    aggregator.ingest(
      'm1',
      metrics(1500, metricsCluster(blue, { total: 8, c2: 7, c4: 1 }), metricsCluster(green, { total: 4, c2: 2, c5: 2 })),
      1500,
    );
    const due = aggregator.collect(2000).due;
    expect(due.find((d) => d.cluster === blue)?.newResponses).toEqual([7, 0, 1, 0]);
    expect(due.find((d) => d.cluster === green)?.newResponses).toEqual([2, 0, 0, 2]);
  });

  it('keeps publishing zeros for an idle revision, then forgets it', () => {
    const aggregator = new LoadAggregator({ ...options, revisionIdleMs: 10_000 });
    aggregator.open('s1', 'lrs', 'n1', { countersAsDeltas: false });
    aggregator.ingest('s1', lrs(lrsCluster(blue, { inFlight: 2 })), 0);
    expect(aggregator.collect(500).due[0]).toMatchObject({ concurrency: 2, nodes: 1 });
    const stale = aggregator.collect(6000);
    expect(stale.due[0]).toMatchObject({ concurrency: 0, nodes: 0 });
    expect(stale.newlyStale).toEqual([{ source: 'lrs', nodeId: 'n1' }]);
    expect(aggregator.collect(7000).newlyStale).toEqual([]);
    const gone = aggregator.collect(11_000);
    expect(gone.due).toEqual([]);
    expect(gone.forgotten).toEqual([{ ref: { tenant: 'acme', service: 'api', revision: 'blue' }, cluster: blue }]);
    expect(aggregator.revisionCount).toBe(0);
  });

  it('counts open, fresh and stale reporters by source', () => {
    const aggregator = started();
    aggregator.open('m1', 'metrics', 'e1', { countersAsDeltas: false });
    aggregator.ingest('s1', lrs(lrsCluster(blue, {})), 0);
    aggregator.ingest('m1', metrics(1, metricsCluster(blue, {})), 0);
    // A MetricsService stream's window before its second flush is two staleness timeouts.
    aggregator.ingest('s1', lrs(lrsCluster(blue, {})), 10_001);
    expect(aggregator.reporterCounts(10_001)).toEqual({ lrs: { open: 1, fresh: 1, stale: 0 }, metrics: { open: 1, fresh: 0, stale: 1 } });
  });
});
