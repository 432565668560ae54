import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TypeUrl } from '@switchyard/shared';
import { encodeDiscoveryResponse } from '../src/xds/encoding.js';
import {
  clusterNameOf,
  wallMs,
  type ClientProcessOptions,
  type FromClients,
  type FromFloor,
  type ToClients,
  type ToFloor,
} from './xds-bench-protocol.js';
import { benchSnapshots } from './xds-bench-resources.js';
import { startEngine } from './xds-bench-engine.js';

/**
 * xDS propagation benchmark. This process runs the control plane's xDS engine; a second process
 * runs the clients, a third a bare grpc-js server (the transport's floor). Each round
 * changes one cluster's endpoints and measures the time from the cache update to the moment
 * the last client received it; the same bytes are then written to as many bare streams. Then
 * the control plane is restarted under every client at once (a reconnect storm), first with
 * clients that keep their versions (as Envoy does), then with clients that lost everything.
 */

const { values } = parseArgs({
  options: {
    clients: { type: 'string' },
    clusters: { type: 'string' },
    rounds: { type: 'string' },
    'eds-subscription': { type: 'string' },
    'skip-storm': { type: 'boolean' },
  },
});
const setting = (flag: string | undefined, env: string, fallback: number) => {
  const value = Number(flag ?? process.env[env] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${env} must be a positive integer`);
  return value;
};
const clients = setting(values.clients, 'XDS_BENCH_CLIENTS', 1000);
const clusters = setting(values.clusters, 'XDS_BENCH_CLUSTERS', 10_000);
const rounds = setting(values.rounds, 'XDS_BENCH_ROUNDS', 20);
const warmupRounds = 2;
const edsSubscription = (values['eds-subscription'] ?? process.env.XDS_BENCH_EDS_SUBSCRIPTION ?? 'names') as 'names' | 'wildcard';
const skipStorm = values['skip-storm'] ?? process.env.XDS_BENCH_SKIP_STORM === '1';

const log = (message: string) => process.stderr.write(`[xds-bench] ${message}\n`);
const memory = () => {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1024 / 1024);
  return `rss ${mb(m.rss)} MB (heap ${mb(m.heapUsed)}, buffers ${mb(m.arrayBuffers)}), peak ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`;
};

const snapshotForRound = benchSnapshots(clusters);

/** A child process of the benchmark, spoken to over Node IPC. */
class Child<In extends { kind: string }, Out> {
  private readonly child: ChildProcess;
  private readonly waiting: { match: (m: In) => boolean; resolve: (m: In) => void }[] = [];

  constructor(script: string, args: string[]) {
    this.child = fork(join(dirname(fileURLToPath(import.meta.url)), script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: In) => {
      const i = this.waiting.findIndex((w) => w.match(message));
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(message);
    });
    this.child.on('exit', (code) => {
      if (code !== 0) {
        log(`${script} exited with ${code}`);
        process.exit(1);
      }
    });
  }

  next<K extends In['kind']>(kind: K, match: (m: Extract<In, { kind: K }>) => boolean = () => true) {
    return new Promise<Extract<In, { kind: K }>>((resolve) =>
      this.waiting.push({
        match: (m) => m.kind === kind && match(m as Extract<In, { kind: K }>),
        resolve: resolve as (m: In) => void,
      }),
    );
  }

  send(message: Out): void {
    this.child.send(message as object);
  }
}

async function until(what: string, condition: () => boolean, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** CPU seconds this process (the control plane) has used so far: shows whose work a phase was. */
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

async function main(): Promise<void> {
  log(
    `${clients} clients, ${clusters} clusters with EDS, ${rounds} rounds (+${warmupRounds} warm-up), EDS subscription: ${edsSubscription}`,
  );
  let engine = await startEngine(0, snapshotForRound(0));
  log(`cache loaded: ${memory()}`);
  const floor = new Child<FromFloor, ToFloor>('xds-bench-floor.js', []);
  const rawPort = (await floor.next('listening')).port;
  const started = wallMs();
  const startedCpu = cpuSeconds();
  const options: ClientProcessOptions = { xdsPort: engine.port, rawPort, clients, clusters, edsSubscription };
  const children = new Child<FromClients, ToClients>('xds-bench-clients.js', [JSON.stringify(options)]);
  const synced = await children.next('synced');
  const initialSyncS = (synced.at - started) / 1000;
  const initialSyncCpuS = cpuSeconds() - startedCpu;
  log(`initial sync of all clients: ${initialSyncS.toFixed(2)} s (control plane CPU ${initialSyncCpuS.toFixed(1)} s); ${memory()}`);
  for (;;) {
    floor.send({ kind: 'count' });
    const counted = await floor.next('counted');
    if (counted.streams === clients && counted.received >= clients) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await until('xDS settled', () => engine.xds.settled());

  const xdsLatencies: number[] = [];
  const rawLatencies: number[] = [];
  for (let round = 1; round <= warmupRounds + rounds; round++) {
    children.send({ kind: 'arm', target: 'xds', round });
    await children.next('armed', (m) => m.target === 'xds' && m.round === round);
    const received = children.next('received', (m) => m.target === 'xds' && m.round === round);
    const snapshot = snapshotForRound(round);
    const t0 = wallMs();
    engine.cache.setSnapshot(snapshot);
    const updated = wallMs() - t0;
    // Runs after the engine's flush (scheduled first): when every write was handed to gRPC.
    const flushed = new Promise<number>((resolve) => setImmediate(() => resolve(wallMs() - t0)));
    const xdsLatency = (await received).last - t0;
    const writtenMs = await flushed;
    await until('ACKs', () => engine.xds.settled());

    // The same response bytes (same resource, version and nonce lengths) to bare streams.
    const resource = engine.cache.typeState('envoy', TypeUrl.ClusterLoadAssignment).resources.get(clusterNameOf(0))!;
    const bytes = encodeDiscoveryResponse({
      versionInfo: engine.cache.typeState('envoy', TypeUrl.ClusterLoadAssignment).version,
      typeUrl: TypeUrl.ClusterLoadAssignment,
      nonce: (round * 7919).toString(36),
      resources: [resource],
    });
    children.send({ kind: 'arm', target: 'raw', round });
    await children.next('armed', (m) => m.target === 'raw' && m.round === round);
    const rawReceived = children.next('received', (m) => m.target === 'raw' && m.round === round);
    const pushed = floor.next('pushed', (m) => m.round === round);
    const acked = floor.next('acked', (m) => m.round === round);
    floor.send({ kind: 'push', round, bytes: bytes.toString('base64') });
    const rawLatency = (await rawReceived).last - (await pushed).t0;
    await acked;

    const label = round <= warmupRounds ? 'warm-up' : 'round';
    log(
      `${label} ${round}: xDS ${xdsLatency.toFixed(1)} ms (cache updated after ${updated.toFixed(1)} ms, all written after ${writtenMs.toFixed(1)} ms), bare ${rawLatency.toFixed(1)} ms (${bytes.length} bytes)`,
    );
    if (round > warmupRounds) {
      xdsLatencies.push(xdsLatency);
      rawLatencies.push(rawLatency);
    }
  }

  log(`after the rounds: ${memory()}`);
  let warmStormS: number | null = null;
  let coldStormS: number | null = null;
  let warmStormCpuS: number | null = null;
  let coldStormCpuS: number | null = null;
  if (!skipStorm) {
    const restart = async () => {
      engine.xds.close();
      engine.server.forceShutdown();
      engine = await startEngine(engine.port, snapshotForRound(warmupRounds + rounds));
    };
    // Clients that keep their versions (Envoy does): a restarted control plane with the same state owes them nothing.
    children.send({ kind: 'storm', cold: false });
    await children.next('stormArmed');
    const w0 = wallMs();
    const wCpu = cpuSeconds();
    await restart();
    await until('warm storm', () => engine.xds.streamsInSync(2) === clients);
    warmStormS = (wallMs() - w0) / 1000;
    warmStormCpuS = cpuSeconds() - wCpu;
    log(
      `reconnect storm, clients keep their config: all ${clients} streams back in sync after ${warmStormS.toFixed(2)} s (control plane CPU ${warmStormCpuS.toFixed(1)} s); ${memory()}`,
    );

    // Clients that lost everything: every client needs the full config again.
    children.send({ kind: 'storm', cold: true });
    await children.next('stormArmed');
    const done = children.next('stormDone');
    const c0 = wallMs();
    const cCpu = cpuSeconds();
    await restart();
    coldStormS = ((await done).at - c0) / 1000;
    coldStormCpuS = cpuSeconds() - cCpu;
    log(
      `reconnect storm, clients start empty: all ${clients} hold the full config after ${coldStormS.toFixed(2)} s (control plane CPU ${coldStormCpuS.toFixed(1)} s); ${memory()}`,
    );
  }

  const stats = children.next('stats');
  children.send({ kind: 'stop' });
  const clientRssMb = (await stats).rssMb;
  const floorStats = floor.next('stats');
  floor.send({ kind: 'stop' });
  const floorRssMb = (await floorStats).rssMb;
  const rssMb = process.resourceUsage().maxRSS / 1024;
  const p99 = percentile(xdsLatencies, 99);
  const rawP99 = percentile(rawLatencies, 99);
  const result = {
    clients,
    clusters,
    rounds,
    eds_subscription: edsSubscription,
    p50_ms: round2(percentile(xdsLatencies, 50)),
    p99_ms: round2(p99),
    raw_p50_ms: round2(percentile(rawLatencies, 50)),
    raw_p99_ms: round2(rawP99),
    ratio: round2(p99 / rawP99),
    rss_mb: Math.round(rssMb),
    client_rss_mb: Math.round(clientRssMb),
    floor_rss_mb: Math.round(floorRssMb),
    initial_sync_s: round2(initialSyncS),
    initial_sync_cpu_s: round2(initialSyncCpuS),
    storm_s: coldStormS === null ? null : round2(coldStormS),
    storm_cpu_s: coldStormCpuS === null ? null : round2(coldStormCpuS),
    warm_storm_s: warmStormS === null ? null : round2(warmStormS),
    warm_storm_cpu_s: warmStormCpuS === null ? null : round2(warmStormCpuS),
    targets: { ratio: 1.5, rss_mb: 512 },
  };
  engine.xds.close();
  engine.server.forceShutdown();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
