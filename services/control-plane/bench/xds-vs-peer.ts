import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TypeUrl } from '@switchyard/shared';
import type { ProtoObject } from '../src/resources.js';
import { encodeResource } from '../src/xds/encoding.js';
import { clusterNameOf } from './xds-bench-protocol.js';
import { changedPort, clusterResource, endpointsResource } from './xds-bench-resources.js';
import { buildGoProgram, cpuSecondsOf, LineProcess, peakRssMbOf } from './xds-peer-processes.js';

/**
 * Switchyard's xDS server beside go-control-plane (the library most Envoy control planes are
 * built on), one after the other, against the same Go client fleet in a separate process, in
 * State-of-the-World and delta mode. Both servers serve the same resources: this benchmark
 * writes them to a file (each resource as the bytes Switchyard encodes) that the peer harness
 * (bench/peers/go-control-plane) loads; Switchyard's process builds the same objects.
 *
 * Per server and mode: the initial sync of the whole fleet (s, server CPU-s); one EDS change
 * per round, the time until the last stream has it (p50/p99 over rounds); a reconnect storm
 * (every client drops its connection and reconnects empty at once, as after a network
 * partition heals: s until all hold the full config again, server CPU-s); the server's peak
 * RSS. Ratios are ours / peer.
 */

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    clusters: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'sotw,delta' },
  },
});
const positive = (name: string, value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const clients = positive('clients', values.clients);
const clusters = positive('clusters', values.clusters);
const rounds = positive('rounds', values.rounds);
const modes = values.modes.split(',').map((m) => {
  if (m !== 'sotw' && m !== 'delta') throw new Error(`--modes: ${m} is neither sotw nor delta`);
  return m;
});
const warmupRounds = 1;
type ServerKind = 'switchyard' | 'go-control-plane';
type Mode = 'sotw' | 'delta';

const log = (message: string) => process.stderr.write(`[xds-vs-peer] ${message}\n`);
const round2 = (n: number) => Math.round(n * 100) / 100;
const anyOf = (typeUrl: typeof TypeUrl.Cluster | typeof TypeUrl.ClusterLoadAssignment, name: string, source: ProtoObject) =>
  Buffer.from(encodeResource(typeUrl, name, source).any).toString('base64');

function writeResources(file: string): void {
  const names = Array.from({ length: clusters }, (_, i) => clusterNameOf(i));
  const content = {
    clusters: names.map((name, i) => anyOf(TypeUrl.Cluster, name, clusterResource(i))),
    endpoints: names.map((name, i) => anyOf(TypeUrl.ClusterLoadAssignment, name, endpointsResource(i, 0))),
  };
  writeFileSync(file, JSON.stringify(content));
}

interface RunningServer {
  process: LineProcess;
  xdsPort: number;
  controlPort: number;
}

interface Programs {
  peer: string;
  fleet: string;
  resources: string;
}

/** Starts a server on free ports; resolves once it serves. */
async function startServer(kind: ServerKind, programs: Programs): Promise<RunningServer> {
  const child =
    kind === 'switchyard'
      ? new LineProcess(kind, process.execPath, [join(here, 'xds-bench-server.js'), '--clusters', String(clusters)])
      : new LineProcess(kind, programs.peer, ['-resources', programs.resources]);
  const ready = await child.next((line) => typeof line.xds_port === 'number');
  return { process: child, xdsPort: ready.xds_port as number, controlPort: ready.control_port as number };
}

async function changeEndpoints(server: RunningServer, round: number): Promise<number> {
  const body = Buffer.from(anyOf(TypeUrl.ClusterLoadAssignment, clusterNameOf(0), endpointsResource(0, round)), 'base64');
  const response = await fetch(`http://127.0.0.1:${server.controlPort}/eds?round=${round}`, { method: 'POST', body });
  if (!response.ok) throw new Error(`POST /eds: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { t0_ms: number }).t0_ms;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Rounds of one EDS change each; returns the last stream's latency per measured round. */
async function edsRounds(server: RunningServer, fleet: LineProcess, label: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let round = 1; round <= warmupRounds + rounds; round++) {
    fleet.send(`arm ${round} ${clusterNameOf(0)} ${changedPort(round)}`);
    await fleet.nextEvent('armed');
    const received = fleet.next((line) => line.event === 'received' && line.round === round);
    const t0 = await changeEndpoints(server, round);
    const arrivals = await received;
    const last = (arrivals.last as number) - t0;
    log(
      `${label} ${round <= warmupRounds ? 'warm-up' : 'round'} ${round}: last stream ${last.toFixed(1)} ms (median stream ${((arrivals.p50 as number) - t0).toFixed(1)} ms)`,
    );
    if (round > warmupRounds) latencies.push(last);
    // Let the ACKs of this round land before the next change.
    await new Promise((r) => setTimeout(r, 300));
  }
  return latencies;
}

interface Figures {
  eds_p50_ms: number;
  eds_p99_ms: number;
  initial_sync_s: number;
  initial_sync_cpu_s: number;
  storm_s: number;
  storm_cpu_s: number;
  peak_rss_mb: number;
  fleet_rss_mb: number;
}

async function measure(kind: ServerKind, mode: Mode, programs: Programs): Promise<Figures> {
  const label = `${kind} ${mode}`;
  const server = await startServer(kind, programs);
  const cpu0 = cpuSecondsOf(server.process.pid);
  const fleetArgs = ['-target', `127.0.0.1:${server.xdsPort}`, '-streams', String(clients), '-clusters', String(clusters), '-mode', mode];
  const fleet = new LineProcess('xds-fleet', programs.fleet, fleetArgs);
  const started = (await fleet.nextEvent('started')).at as number;
  const synced = (await fleet.nextEvent('synced')).at as number;
  const initialSyncS = (synced - started) / 1000;
  const initialSyncCpuS = cpuSecondsOf(server.process.pid) - cpu0;
  log(`${label}: initial sync of ${clients} streams ${initialSyncS.toFixed(2)} s, server CPU ${initialSyncCpuS.toFixed(1)} s`);

  const latencies = await edsRounds(server, fleet, label);

  const stormCpu0 = cpuSecondsOf(server.process.pid);
  fleet.send('storm');
  const stormStart = (await fleet.nextEvent('storm_started')).at as number;
  const stormSynced = (await fleet.nextEvent('synced')).at as number;
  const stormS = (stormSynced - stormStart) / 1000;
  const stormCpuS = cpuSecondsOf(server.process.pid) - stormCpu0;
  const peakRss = peakRssMbOf(server.process.pid);
  log(
    `${label}: reconnect storm, all ${clients} streams hold the full config again after ${stormS.toFixed(2)} s, server CPU ${stormCpuS.toFixed(1)} s`,
  );

  fleet.send('stop');
  const fleetRss = (await fleet.nextEvent('stats')).rss_mb as number;
  await Promise.all([server.process.kill(), fleet.kill()]);
  const figures: Figures = {
    eds_p50_ms: round2(percentile(latencies, 50)),
    eds_p99_ms: round2(percentile(latencies, 99)),
    initial_sync_s: round2(initialSyncS),
    initial_sync_cpu_s: round2(initialSyncCpuS),
    storm_s: round2(stormS),
    storm_cpu_s: round2(stormCpuS),
    peak_rss_mb: Math.round(peakRss),
    fleet_rss_mb: Math.round(fleetRss),
  };
  log(`${label}: ${JSON.stringify(figures)}`);
  return figures;
}

function ratios(ours: Figures, peer: Figures) {
  return {
    eds_p99_ratio: round2(ours.eds_p99_ms / peer.eds_p99_ms),
    initial_sync_ratio: round2(ours.initial_sync_s / peer.initial_sync_s),
    storm_ratio: round2(ours.storm_s / peer.storm_s),
    rss_ratio: round2(ours.peak_rss_mb / peer.peak_rss_mb),
  };
}

type Ratios = ReturnType<typeof ratios>;

async function main(): Promise<void> {
  const programs: Programs = {
    peer: buildGoProgram(repoRoot, 'peers/go-control-plane', 'go-control-plane-peer'),
    fleet: buildGoProgram(repoRoot, 'xds-fleet', 'xds-fleet'),
    resources: '',
  };
  const dir = mkdtempSync(join(tmpdir(), 'xds-vs-peer-'));
  programs.resources = join(dir, 'resources.json');
  writeResources(programs.resources);
  log(`${clients} streams, ${clusters} clusters with EDS, ${rounds} rounds (+${warmupRounds} warm-up), modes ${modes.join(', ')}`);
  const byMode: Record<string, Record<ServerKind, Figures> & { ratios: Ratios }> = {};
  try {
    for (const mode of modes) {
      const ours = await measure('switchyard', mode, programs);
      const peer = await measure('go-control-plane', mode, programs);
      byMode[mode] = { switchyard: ours, 'go-control-plane': peer, ratios: ratios(ours, peer) };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The headline ratios are the worst over the modes measured.
  const worst = (key: keyof Ratios) => Math.max(...Object.values(byMode).map((m) => m.ratios[key]));
  const result = {
    peer: 'go-control-plane',
    peer_version: /github\.com\/envoyproxy\/go-control-plane (v\S+)/.exec(readFileSync(join(repoRoot, 'bench', 'go.mod'), 'utf8'))?.[1],
    clients,
    clusters,
    rounds,
    ...byMode,
    eds_p99_ratio: worst('eds_p99_ratio'),
    initial_sync_ratio: worst('initial_sync_ratio'),
    storm_ratio: worst('storm_ratio'),
    rss_ratio: worst('rss_ratio'),
    targets: { ratio: 1.0 },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
