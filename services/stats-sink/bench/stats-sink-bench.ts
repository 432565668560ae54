/**
 * pnpm bench:stats-sink — many concurrent LRS and MetricsService streams on loopback, each
 * with many clusters, against a stats-sink publishing to a real nats-server. Measures the
 * ingest rate (cluster stats/s, metric families/s), the aggregation lag (report received →
 * sample published) and RSS, then decodes the same bytes with protobufjs alone (the floor)
 * and prints a final JSON line.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig, lookupType, startHost, statsSinkEnv, type Host } from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import type { Registry } from 'prom-client';
import { createStatsSinkService } from '../src/index.js';
import { loadStatsRequestType, metricsMessageType } from '../src/wire.js';
import { buildCorpus, type CorpusParams } from './corpus.js';

const { values: args } = parseArgs({
  options: {
    'lrs-streams': { type: 'string', default: '500' },
    'metrics-streams': { type: 'string', default: '50' },
    'lrs-clusters': { type: 'string', default: '500' },
    'metrics-clusters': { type: 'string', default: '100' },
    revisions: { type: 'string', default: '2000' },
    'warmup-s': { type: 'string', default: '3' },
    'paced-s': { type: 'string', default: '10' },
    'flood-s': { type: 'string', default: '16' },
    'interval-ms': { type: 'string', default: '1000' },
  },
});

const params: CorpusParams = {
  lrsStreams: Number(args['lrs-streams']),
  metricsStreams: Number(args['metrics-streams']),
  lrsClustersPerMessage: Number(args['lrs-clusters']),
  metricsClustersPerMessage: Number(args['metrics-clusters']),
  revisions: Number(args.revisions),
  variants: 4,
  intervalMs: Number(args['interval-ms']),
};
const warmupMs = Number(args['warmup-s']) * 1000;
const pacedMs = Number(args['paced-s']) * 1000;
const floodMs = Number(args['flood-s']) * 1000;

function log(message: string): void {
  process.stderr.write(`[stats-sink-bench] ${message}\n`);
}

async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

async function snapshot(registry: Registry) {
  return {
    lrsClusters: await counter(registry, 'switchyard_stats_sink_cluster_stats_total', { source: 'lrs' }),
    metricsClusters: await counter(registry, 'switchyard_stats_sink_cluster_stats_total', { source: 'metrics' }),
    families: await counter(registry, 'switchyard_stats_sink_metric_families_total'),
    lrsMessages: await counter(registry, 'switchyard_stats_sink_messages_total', { source: 'lrs' }),
    metricsMessages: await counter(registry, 'switchyard_stats_sink_messages_total', { source: 'metrics' }),
    at: performance.now(),
    mainCpu: mainThreadCpuSeconds(),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * CPU seconds of the main thread (where the sink decodes, aggregates and publishes), from
 * /proc on Linux: unlike wall time it does not count time the OS gave to other processes on
 * a busy machine, and unlike process.cpuUsage() it leaves out GC helper threads. Elsewhere,
 * the whole process's CPU time.
 */
function mainThreadCpuSeconds(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  }
}

/** Main-thread CPU seconds per message when protobufjs only decodes the bytes, nothing else. */
function decodeCost(typeName: string, messages: Buffer[], budgetMs: number): number {
  if (messages.length === 0) return 0;
  const type = lookupType(typeName);
  let decoded = 0;
  const cpu = mainThreadCpuSeconds();
  const startedAt = performance.now();
  while (performance.now() - startedAt < budgetMs) {
    for (const bytes of messages) type.decode(bytes);
    decoded += messages.length;
  }
  return (mainThreadCpuSeconds() - cpu) / decoded;
}

interface Phase {
  seconds: number;
  lrsClusters: number;
  metricsClusters: number;
  families: number;
  lrsMessages: number;
  metricsMessages: number;
  /** Main-thread CPU seconds: everything the sink did there (gRPC, decoding, aggregating, publishing). */
  sinkCpuSeconds: number;
  lags: number[];
  /** How late the sink's event loop ran timers (p99 and max), in ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** Counts what the sink took in over `ms`, and the lag of every sample it published meanwhile. */
async function measure(registry: Registry, lagSink: { lags: number[] | undefined }, ms: number): Promise<Phase> {
  const lags: number[] = [];
  lagSink.lags = lags;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const before = await snapshot(registry);
  await new Promise((r) => setTimeout(r, ms));
  const after = await snapshot(registry);
  lagSink.lags = undefined;
  loopDelay.disable();
  return {
    seconds: (after.at - before.at) / 1000,
    lrsClusters: after.lrsClusters - before.lrsClusters,
    metricsClusters: after.metricsClusters - before.metricsClusters,
    families: after.families - before.families,
    lrsMessages: after.lrsMessages - before.lrsMessages,
    metricsMessages: after.metricsMessages - before.metricsMessages,
    sinkCpuSeconds: after.mainCpu - before.mainCpu,
    lags: lags.sort((a, b) => a - b),
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

/** Resolves once no message of `source` arrived for a second (at most 60 s). */
async function settled(registry: Registry, source: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = -1;
  for (;;) {
    const now = await counter(registry, 'switchyard_stats_sink_messages_total', { source });
    if (now === last || Date.now() > deadline) return;
    last = now;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function main(): Promise<void> {
  const nats = await NatsServer.start();
  const lagSink: { lags: number[] | undefined } = { lags: undefined };
  let published = 0;
  const config = {
    ...loadConfig(statsSinkEnv, {}),
    LOAD_REPORTING_INTERVAL_MS: params.intervalMs,
    // The flood phase sends as fast as it can on purpose; the per-stream flood limit would drop that.
    STATS_MAX_STREAM_MESSAGES_PER_S: 1e9,
  };
  const host: Host = await startHost({
    name: 'stats-sink',
    services: [
      createStatsSinkService(config, {
        onPublished: (load) => {
          published++;
          if (load.lagMs !== undefined) lagSink.lags?.push(load.lagMs);
        },
      }),
    ],
    natsUrl: nats.url,
    grpcPort: 0,
    adminPort: 0,
    // Once the load stops, every node goes stale during the decode-only phase: not worth a warning each.
    logLevel: 'error',
    otlpEndpoint: undefined,
  });
  const registry = host.runtime.observability.registry;
  let received = 0;
  const sub = host.runtime.nc.subscribe('switchyard.load.>', {
    callback: () => {
      received++;
    },
  });

  log(`load: ${JSON.stringify(params)}`);
  const client = fork(fileURLToPath(new URL('./load-client.js', import.meta.url)), { stdio: 'inherit' });
  const started = new Promise<void>((resolve) => client.once('message', () => resolve()));
  client.send({ type: 'start', target: `127.0.0.1:${host.grpcPort}`, params });
  await started;
  const peak = { rss: 0, heapUsed: 0, external: 0 };
  const rssTimer = setInterval(() => {
    const usage = process.memoryUsage();
    peak.rss = Math.max(peak.rss, usage.rss);
    peak.heapUsed = Math.max(peak.heapUsed, usage.heapUsed);
    peak.external = Math.max(peak.external, usage.external);
  }, 200);

  log(`${params.lrsStreams} LRS and ${params.metricsStreams} MetricsService streams open, each reporting every ${params.intervalMs} ms`);
  await new Promise((r) => setTimeout(r, warmupMs));
  const paced = await measure(registry, lagSink, pacedMs);
  // Each source floods in turn while the other pauses: mixed, the many LRS streams would take
  // the sink's event loop from the few MetricsService ones.
  log('LRS streams send as fast as they can');
  client.send({ type: 'flood', source: 'lrs' });
  await new Promise((r) => setTimeout(r, 2000));
  const lrsFlood = await measure(registry, lagSink, floodMs / 2);
  // What the LRS streams had queued in HTTP/2 (client and server side) drains before the next phase.
  client.send({ type: 'pause' });
  await settled(registry, 'lrs');
  log('MetricsService streams send as fast as they can');
  client.send({ type: 'flood', source: 'metrics' });
  await new Promise((r) => setTimeout(r, 2000));
  const metricsFlood = await measure(registry, lagSink, floodMs / 2);
  clearInterval(rssTimer);
  client.send({ type: 'stop' });
  await new Promise((r) => client.once('exit', r));

  // Built only now (the load process builds its own), so the sink's memory above is its own.
  log('decoding the same bytes with protobufjs only');
  const corpus = buildCorpus(params);
  const lrsDecode = decodeCost(
    loadStatsRequestType,
    corpus.lrs.flatMap((s) => s.bodies),
    4000,
  );
  const metricsDecode = decodeCost(
    metricsMessageType,
    corpus.metrics.flatMap((s) => s.bodies),
    4000,
  );
  // What protobufjs alone spends on exactly the messages the sink took in while flooded.
  const floods = [lrsFlood, metricsFlood];
  const sum = (pick: (phase: Phase) => number) => floods.reduce((total, phase) => total + pick(phase), 0);
  const decodeCpuSeconds = sum((p) => p.lrsMessages * lrsDecode + p.metricsMessages * metricsDecode);
  const floodCpuSeconds = sum((p) => p.sinkCpuSeconds);
  const floodClusterStats = sum((p) => p.lrsClusters + p.metricsClusters);

  // Every sample published must have come back through the nats-server.
  await host.runtime.nc.flush();
  const deadline = Date.now() + 5000;
  while (received < published && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  sub.unsubscribe();
  await host.stop();
  await nats.dispose();

  const round = (n: number, digits = 0) => Number(n.toFixed(digits));
  const perSecond = (n: number, phase: Phase) => round(n / phase.seconds);
  const result = {
    // Capacity: the streams of one source sending as fast as flow control allows.
    cluster_stats_per_s: perSecond(lrsFlood.lrsClusters + lrsFlood.metricsClusters, lrsFlood),
    families_per_s: perSecond(metricsFlood.families, metricsFlood),
    metrics_cluster_stats_per_s: perSecond(metricsFlood.metricsClusters, metricsFlood),
    decode_only_per_s: round(floodClusterStats / decodeCpuSeconds),
    ratio: round(decodeCpuSeconds / floodCpuSeconds, 3),
    // Operation: every stream reporting once per interval.
    lag_p50_ms: round(percentile(paced.lags, 50), 1),
    lag_p99_ms: round(percentile(paced.lags, 99), 1),
    lag_max_ms: round(paced.lags.at(-1) ?? 0, 1),
    loop_delay_p99_ms: round(paced.loopDelayP99Ms, 1),
    loop_delay_max_ms: round(paced.loopDelayMaxMs, 1),
    rss_mb: round(peak.rss / 1024 / 1024, 1),
    heap_used_mb: round(peak.heapUsed / 1024 / 1024, 1),
    external_mb: round(peak.external / 1024 / 1024, 1),
    offered_cluster_stats_per_s: round(
      ((params.lrsStreams * params.lrsClustersPerMessage + params.metricsStreams * params.metricsClustersPerMessage) * 1000) /
        params.intervalMs,
    ),
    paced_cluster_stats_per_s: perSecond(paced.lrsClusters + paced.metricsClusters, paced),
    paced_families_per_s: perSecond(paced.families, paced),
    paced_sink_thread_cpu: round(paced.sinkCpuSeconds / paced.seconds, 2),
    flood_lag_p99_ms: round(
      percentile(
        [...lrsFlood.lags, ...metricsFlood.lags].sort((a, b) => a - b),
        99,
      ),
      1,
    ),
    flood_sink_thread_cpu: round(floodCpuSeconds / sum((p) => p.seconds), 2),
    samples_published: published,
    samples_received_on_nats: received,
    interval_ms: params.intervalMs,
    lrs_streams: params.lrsStreams,
    metrics_streams: params.metricsStreams,
    lrs_clusters_per_message: params.lrsClustersPerMessage,
    metrics_clusters_per_message: params.metricsClustersPerMessage,
    revisions: params.revisions,
  };
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
