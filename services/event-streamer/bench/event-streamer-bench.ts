/**
 * Event-streamer benchmark: a real nats-server, the real HDS server, and a fleet of simulated
 * Envoys (our HDS client, real gRPC) in a child process so that the server's CPU and RSS are
 * its own. Measures: time until every Envoy holds its complete assignment, the same after 10 %
 * of the Envoys leave (and how many assignments moved), probes per endpoint, result ingestion
 * rate, and the latency from a result to its health transition's JetStream ack.
 *
 *   node services/event-streamer/dist/bench/event-streamer-bench.js [--envoys 1000] [--endpoints 10000] [--k 3]
 *
 * Prints progress on stderr and one JSON line on stdout.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  buckets,
  clusterName,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  openBucket,
  serviceRecord,
  type ServiceRecord,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { HealthCoordinator } from '../src/coordinator.js';
import { startHealthChecking } from '../src/health.js';
import { eventStreamerMetrics } from '../src/metrics.js';
import { HdsClient } from '../src/testing/hds-client.js';

interface Options {
  envoys: number;
  endpoints: number;
  k: number;
  leaveFraction: number;
  reportRounds: number;
  /** Endpoints that turn unhealthy in the steady-state transition round. */
  failing: number;
}

function parseOptions(argv: string[]): Options {
  const arg = (name: string, fallback: number) => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? fallback : Number(argv[i + 1]);
  };
  const endpoints = arg('endpoints', 10_000);
  return {
    envoys: arg('envoys', 1000),
    endpoints,
    k: arg('k', 3),
    leaveFraction: arg('leave', 0.1),
    reportRounds: arg('rounds', 5),
    failing: arg('failing', Math.max(1, Math.round(endpoints / 100))),
  };
}

const endpointsPerService = 50;

function services(count: number): ServiceRecord[] {
  const records: ServiceRecord[] = [];
  for (let s = 0; s * endpointsPerService < count; s++) {
    const n = Math.min(endpointsPerService, count - s * endpointsPerService);
    records.push(
      serviceRecord.parse({
        schemaVersion: 1,
        tenant: `t${s % 20}`,
        name: `svc${s}`,
        spec: {
          domains: [`svc${s}.example.com`],
          revisions: [
            { name: 'r1', endpoints: Array.from({ length: n }, (_, i) => ({ address: `10.${s >> 8}.${s & 255}.${i + 1}`, port: 8080 })) },
          ],
          healthCheck: { protocol: 'tcp', gracePeriod: 0 },
        },
        updatedAt: 1,
      }),
    );
  }
  return records;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// The simulated fleet (child process).

type FleetCommand =
  | { cmd: 'core'; options: Options }
  | { cmd: 'connect'; address: string; envoys: number; endpoints: number; k: number }
  | { cmd: 'leave'; fraction: number }
  | { cmd: 'report'; failing: string[] }
  | { cmd: 'exit' };

type FleetReply =
  | { done: 'core'; assignMs: number; rebalanceMs: number }
  | { done: 'connect'; ms: number; minProbes: number; maxProbes: number; pairs: number }
  | { done: 'leave'; ms: number; minProbes: number; maxProbes: number; movedPairs: number; pairs: number; leftPairs: number }
  | { done: 'report'; results: number; sendMs: number };

async function runFleet(): Promise<void> {
  const clients = new Map<string, HdsClient>();
  const held = new Map<string, Set<string>>();
  const holders = new Map<string, number>();
  let pairs = 0;
  /** Endpoints held by exactly k Envoys: kept up to date so that checking completion is O(1). */
  let exact = 0;
  let waiter: (() => void) | undefined;
  let expected = { endpoints: 0, k: 0 };

  const complete = () => pairs === expected.endpoints * expected.k && exact === expected.endpoints;
  const take = (key: string) => {
    const n = (holders.get(key) ?? 0) + 1;
    holders.set(key, n);
    if (n === expected.k) exact++;
    else if (n === expected.k + 1) exact--;
    pairs++;
  };
  const release = (key: string) => {
    const n = (holders.get(key) ?? 1) - 1;
    if (n === expected.k - 1) exact--;
    else if (n === expected.k) exact++;
    if (n === 0) holders.delete(key);
    else holders.set(key, n);
    pairs--;
  };
  const onSpecifier = (client: HdsClient) => {
    const id = client.options.nodeId;
    const now = new Set(client.assigned.map((e) => `${e.cluster}|${e.address}|${e.port}`));
    const before = held.get(id) ?? new Set<string>();
    for (const key of before) if (!now.has(key)) release(key);
    for (const key of now) if (!before.has(key)) take(key);
    held.set(id, now);
    if (waiter !== undefined && complete()) waiter();
  };
  const settled = () =>
    new Promise<void>((resolve) => {
      if (complete()) return resolve();
      waiter = () => {
        waiter = undefined;
        resolve();
      };
    });
  const probes = () => {
    const counts = [...holders.values()];
    return { minProbes: Math.min(...counts), maxProbes: Math.max(...counts) };
  };
  const reply = (message: FleetReply) => process.send?.(message);

  process.on('message', (message: FleetCommand) => {
    void (async () => {
      if (message.cmd === 'core') {
        reply({ done: 'core', ...measureCore(services(message.options.endpoints), message.options) });
      } else if (message.cmd === 'connect') {
        expected = { endpoints: message.endpoints, k: Math.min(message.k, message.envoys) };
        const start = performance.now();
        for (let i = 0; i < message.envoys; i++) {
          const nodeId = `envoy-${i}`;
          clients.set(nodeId, new HdsClient(message.address, { nodeId, protocols: ['HTTP', 'TCP'], onSpecifier }));
        }
        await settled();
        reply({ done: 'connect', ms: performance.now() - start, ...probes(), pairs });
      } else if (message.cmd === 'leave') {
        const leaving = [...clients.keys()].slice(0, Math.round(clients.size * message.fraction));
        const before = new Map([...held].map(([id, keys]) => [id, new Set(keys)]));
        let leftPairs = 0;
        const start = performance.now();
        for (const id of leaving) {
          leftPairs += held.get(id)?.size ?? 0;
          clients.get(id)?.close();
          clients.delete(id);
          for (const key of held.get(id) ?? []) release(key);
          held.delete(id);
        }
        await settled();
        const ms = performance.now() - start;
        let movedPairs = 0;
        for (const [id, keys] of held) for (const key of keys) if (!before.get(id)?.has(key)) movedPairs++;
        reply({ done: 'leave', ms, ...probes(), movedPairs, pairs, leftPairs });
      } else if (message.cmd === 'report') {
        const failing = new Set(message.failing);
        const start = performance.now();
        let results = 0;
        for (const client of clients.values()) {
          const assigned = client.assigned;
          client.report(
            assigned.map((e) => ({ ...e, status: failing.has(`${e.cluster}|${e.address}|${e.port}`) ? 'UNHEALTHY' : 'HEALTHY' })),
          );
          results += assigned.length;
        }
        reply({ done: 'report', results, sendMs: performance.now() - start });
      } else {
        for (const client of clients.values()) client.close();
        process.exit(0);
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------
// The server side (this process).

function ask<T extends FleetReply['done']>(child: ChildProcess, command: FleetCommand, done: T): Promise<Extract<FleetReply, { done: T }>> {
  return new Promise((resolve) => {
    const onMessage = (message: FleetReply) => {
      if (message.done !== done) return;
      child.off('message', onMessage);
      resolve(message as Extract<FleetReply, { done: T }>);
    };
    child.on('message', onMessage);
    child.send(command);
  });
}

/** The pure core alone: every checker joining one by one (the slowest order), then 10 % of them leaving at once. */
function measureCore(records: ServiceRecord[], options: Options): { assignMs: number; rebalanceMs: number } {
  const coordinator = new HealthCoordinator({ checkersPerEndpoint: options.k, staleAfterMs: 60_000 });
  for (const record of records) coordinator.applyService(record, 0);
  const start = performance.now();
  for (let i = 0; i < options.envoys; i++) coordinator.connect(`envoy-${i}`, [], 0);
  const assignMs = performance.now() - start;
  const leaving = Array.from({ length: Math.round(options.envoys * options.leaveFraction) }, (_, i) => `envoy-${i}`);
  const rebalanceStart = performance.now();
  coordinator.disconnect(leaving, 0);
  return { assignMs, rebalanceMs: performance.now() - rebalanceStart };
}

async function runBench(options: Options): Promise<void> {
  let peakRss = process.memoryUsage().rss;
  const rssSampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const records = services(options.endpoints);

  const nats = await NatsServer.start();
  const logger = createLogger('event-streamer-bench', 'warn');
  const observability = createObservability('event-streamer-bench');
  const nc = await connectNats({ servers: nats.url, name: 'bench', logger, observability });
  const { js } = await ensureStreams(nc);
  const kv = await openBucket(nc, buckets.config);
  for (const record of records) await kv.put(configKeys.service(record.tenant, record.name), JSON.stringify(record));

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const latencies: number[] = [];
  const metrics = eventStreamerMetrics(observability.registry);
  const health = await startHealthChecking({
    nc,
    js,
    grpcServer: server,
    logger,
    registry: observability.registry,
    metrics,
    checkersPerEndpoint: options.k,
    // Simulated Envoys report on command; a long interval keeps votes from going stale between phases.
    reportIntervalMs: 60_000,
    onPublished: (_t, latencyMs) => latencies.push(latencyMs),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  await health.loaded;
  log(`server ready: ${health.coordinator.catalog.size} endpoints on :${port}`);

  // The fleet, and the core measured alone, run in a child process: this one's CPU and RSS are the server's.
  const child = fork(fileURLToPath(import.meta.url), ['fleet'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const core = await ask(child, { cmd: 'core', options }, 'core');
  log(`pure core: assign ${core.assignMs.toFixed(0)} ms, rebalance ${core.rebalanceMs.toFixed(0)} ms`);
  const connected = await ask(
    child,
    { cmd: 'connect', address: `127.0.0.1:${port}`, envoys: options.envoys, endpoints: options.endpoints, k: options.k },
    'connect',
  );
  log(`assigned: ${connected.ms.toFixed(0)} ms, probes per endpoint ${connected.minProbes}..${connected.maxProbes}`);
  const left = await ask(child, { cmd: 'leave', fraction: options.leaveFraction }, 'leave');
  log(`rebalanced: ${left.ms.toFixed(0)} ms, ${left.movedPairs} of ${left.pairs} assignments moved`);

  const accepted = async () => (await metrics.results.get()).values.find((v) => v.labels.outcome === 'accepted')?.value ?? 0;
  const until = async (condition: () => Promise<boolean> | boolean) => {
    while (!(await condition())) await new Promise((r) => setTimeout(r, 5));
  };
  // First report round: every endpoint turns healthy (a burst of transitions).
  let base = await accepted();
  let firstRound = await ask(child, { cmd: 'report', failing: [] }, 'report');
  await until(async () => (await accepted()) >= base + firstRound.results);
  await health.publisher.idle();
  const burst = latencies.splice(0);
  log(`burst: ${burst.length} transitions, p99 ${percentile(burst, 99).toFixed(1)} ms`);

  // Steady rounds: a few endpoints fail in one round; the rest report as before.
  const failing = [...Array(options.failing).keys()].map((i) => {
    const record = records[i % records.length] as ServiceRecord;
    const endpoint = record.spec.revisions[0]?.endpoints?.[Math.floor(i / records.length)] as { address: string; port: number };
    return `${clusterName({ tenant: record.tenant, service: record.name, revision: 'r1' })}|${endpoint.address}|${endpoint.port}`;
  });
  let results = 0;
  base = await accepted();
  const ingestStart = performance.now();
  for (let r = 0; r < options.reportRounds; r++) {
    firstRound = await ask(child, { cmd: 'report', failing: r === 0 ? failing : [] }, 'report');
    results += firstRound.results;
  }
  await until(async () => (await accepted()) >= base + results);
  const ingestSeconds = (performance.now() - ingestStart) / 1000;
  await health.publisher.idle();
  const steady = latencies.splice(0);
  log(`ingested ${results} results in ${ingestSeconds.toFixed(2)} s; ${steady.length} steady transitions`);

  child.send({ cmd: 'exit' } satisfies FleetCommand);
  clearInterval(rssSampler);
  await health.stop();
  server.forceShutdown();
  await nc.close();
  await nats.dispose();
  const summary = {
    envoys: options.envoys,
    endpoints: options.endpoints,
    k: options.k,
    assign_ms: round(connected.ms),
    assign_core_ms: round(core.assignMs),
    rebalance_ms: round(left.ms),
    rebalance_core_ms: round(core.rebalanceMs),
    moved_fraction: round(left.movedPairs / left.pairs, 4),
    moved_fraction_minimum: round(left.leftPairs / connected.pairs, 4),
    probes_per_endpoint: connected.minProbes === connected.maxProbes && left.minProbes === left.maxProbes ? connected.minProbes : -1,
    results_per_s: Math.round(results / ingestSeconds),
    transitions: steady.length,
    transition_p99_ms: round(percentile(steady, 99), 2),
    burst_transitions: burst.length,
    burst_transition_p99_ms: round(percentile(burst, 99), 1),
    rss_mb: round(peakRss / 1024 / 1024),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (process.argv[2] === 'fleet') {
  await runFleet();
} else {
  await runBench(parseOptions(process.argv.slice(2)));
}
