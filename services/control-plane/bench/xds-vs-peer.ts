import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
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
 * RSS. CPU and RSS cover a server's worker processes too (`--workers`, as XDS_WORKERS).
 * Ratios are ours / peer.
 */

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    clusters: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'sotw,delta' },
    /**
     * Storm check instead of the comparison: `--clients` steady streams plus this many churning
     * ones; an EDS change's p99 to the steady streams, quiet and during a reconnect storm of
     * the churning ones (target: storm ≤ 2× quiet).
     */
    'storm-check': { type: 'string' },
    /** No reconnect storm (storm_s and storm_cpu_s are null): the scaling table's large cells. */
    'skip-storm': { type: 'boolean', default: false },
    /** Which servers to run (e.g. `switchyard` alone while profiling); ratios need both. */
    servers: { type: 'string', default: 'switchyard,go-control-plane' },
    // As XDS_WORKERS: one worker process per core beyond the first.
    workers: { type: 'string', default: String(Math.max(0, availableParallelism() - 1)) },
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
const stormClients = values['storm-check'] === undefined ? undefined : positive('storm-check', values['storm-check']);
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 0) throw new Error('--workers must be 0 or more');
const modes = values.modes.split(',').map((m) => {
  if (m !== 'sotw' && m !== 'delta') throw new Error(`--modes: ${m} is neither sotw nor delta`);
  return m;
});
const warmupRounds = 1;
type ServerKind = 'switchyard' | 'go-control-plane';
const servers = values.servers.split(',').map((s): ServerKind => {
  if (s !== 'switchyard' && s !== 'go-control-plane') throw new Error(`--servers: ${s} is neither switchyard nor go-control-plane`);
  return s;
});
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
      ? new LineProcess(kind, process.execPath, [
          join(here, 'xds-bench-server.js'),
          '--clusters',
          String(clusters),
          '--workers',
          String(workers),
        ])
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

/**
 * Rounds of one EDS change each; returns the last (steady) stream's latency per measured
 * round. `during` runs after arming and before the change (e.g. starts a storm); `after`
 * once the change arrived.
 */
async function edsRounds(
  server: RunningServer,
  fleet: LineProcess,
  label: string,
  hooks: { during?: () => Promise<void>; after?: () => Promise<void> } = {},
  // Round numbers only grow: a client counts a change once per round number.
  firstRound = 1,
): Promise<number[]> {
  const latencies: number[] = [];
  for (let round = firstRound; round < firstRound + warmupRounds + rounds; round++) {
    fleet.send(`arm ${round} ${clusterNameOf(0)} ${changedPort(round)}`);
    await fleet.nextEvent('armed');
    await hooks.during?.();
    const received = fleet.next((line) => line.event === 'received' && line.round === round);
    const t0 = await changeEndpoints(server, round);
    const arrivals = await received;
    const last = (arrivals.last as number) - t0;
    log(
      `${label} ${round < firstRound + warmupRounds ? 'warm-up' : 'round'} ${round}: last stream ${last.toFixed(1)} ms (median stream ${((arrivals.p50 as number) - t0).toFixed(1)} ms)`,
    );
    if (round >= firstRound + warmupRounds) latencies.push(last);
    await hooks.after?.();
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
  storm_s: number | null;
  storm_cpu_s: number | null;
  peak_rss_mb: number;
  fleet_rss_mb: number;
}

/** A fleet of `streams` clients against a server, once every stream holds the full config. */
async function startFleet(server: RunningServer, mode: Mode, programs: Programs, streams: number, idPrefix = 'fleet') {
  const fleetArgs = ['-target', `127.0.0.1:${server.xdsPort}`, '-streams', String(streams), '-clusters', String(clusters), '-mode', mode];
  fleetArgs.push('-id-prefix', idPrefix);
  const fleet = new LineProcess('xds-fleet', programs.fleet, fleetArgs);
  const started = (await fleet.nextEvent('started')).at as number;
  const synced = (await fleet.nextEvent('synced')).at as number;
  return { fleet, initialSyncS: (synced - started) / 1000 };
}

/** A server and a synced fleet of `streams` clients against it. */
async function startPair(kind: ServerKind, mode: Mode, programs: Programs, streams: number, idPrefix?: string) {
  const server = await startServer(kind, programs);
  const cpu0 = cpuSecondsOf(server.process.pid);
  const { fleet, initialSyncS } = await startFleet(server, mode, programs, streams, idPrefix);
  return { server, fleet, initialSyncS, initialSyncCpuS: cpuSecondsOf(server.process.pid) - cpu0 };
}

/** Every client drops its connection and reconnects empty at once; until all hold the full config again. */
async function reconnectStorm(server: RunningServer, fleet: LineProcess): Promise<{ s: number; cpuS: number }> {
  const cpu0 = cpuSecondsOf(server.process.pid);
  fleet.send('storm');
  const start = (await fleet.nextEvent('storm_started')).at as number;
  const synced = (await fleet.nextEvent('synced')).at as number;
  return { s: (synced - start) / 1000, cpuS: cpuSecondsOf(server.process.pid) - cpu0 };
}

async function measure(kind: ServerKind, mode: Mode, programs: Programs): Promise<Figures> {
  const label = `${kind} ${mode}`;
  const { server, fleet, initialSyncS, initialSyncCpuS } = await startPair(kind, mode, programs, clients);
  log(`${label}: initial sync of ${clients} streams ${initialSyncS.toFixed(2)} s, server CPU ${initialSyncCpuS.toFixed(1)} s`);

  const latencies = await edsRounds(server, fleet, label);

  const storm = values['skip-storm'] ? undefined : await reconnectStorm(server, fleet);
  const peakRss = peakRssMbOf(server.process.pid);
  if (storm !== undefined) {
    log(
      `${label}: reconnect storm, all ${clients} streams hold the full config again after ${storm.s.toFixed(2)} s, server CPU ${storm.cpuS.toFixed(1)} s`,
    );
  }

  fleet.send('stop');
  const fleetRss = (await fleet.nextEvent('stats')).rss_mb as number;
  await Promise.all([server.process.kill(), fleet.kill()]);
  const figures: Figures = {
    eds_p50_ms: round2(percentile(latencies, 50)),
    eds_p99_ms: round2(percentile(latencies, 99)),
    initial_sync_s: round2(initialSyncS),
    initial_sync_cpu_s: round2(initialSyncCpuS),
    storm_s: storm === undefined ? null : round2(storm.s),
    storm_cpu_s: storm === undefined ? null : round2(storm.cpuS),
    peak_rss_mb: Math.round(peakRss),
    fleet_rss_mb: Math.round(fleetRss),
  };
  log(`${label}: ${JSON.stringify(figures)}`);
  return figures;
}

interface StormCheck {
  quiet_p99_ms: number;
  storm_p99_ms: number;
  storm_to_quiet_ratio: number;
}

/**
 * EDS p99 to the steady streams while the churning ones stay connected, then with each
 * change made right as every churning stream reconnects empty (a storm per round). Steady and
 * churning clients are two fleet processes, as Envoys are processes of their own: in one Go
 * process, a steady client's read would wait for a core behind thousands of goroutines
 * parsing their full configs, and the figure would be the fleet's scheduling, not the server's.
 */
async function stormCheck(kind: ServerKind, mode: Mode, programs: Programs, churning: number): Promise<StormCheck> {
  const label = `${kind} ${mode} storm check`;
  const { server, fleet: steady, initialSyncS } = await startPair(kind, mode, programs, clients, 'steady');
  const churn = await startFleet(server, mode, programs, churning, 'churning');
  log(
    `${label}: ${clients} steady streams synced in ${initialSyncS.toFixed(2)} s, then ${churning} churning ones in ${churn.initialSyncS.toFixed(2)} s`,
  );
  const quiet = await edsRounds(server, steady, `${label} quiet`);
  let stormSynced: Promise<unknown> = Promise.resolve();
  const stormy = await edsRounds(
    server,
    steady,
    `${label} storm`,
    {
      during: async () => {
        churn.fleet.send('storm');
        await churn.fleet.nextEvent('storm_started');
        stormSynced = churn.fleet.nextEvent('synced');
      },
      after: async () => {
        await stormSynced;
      },
    },
    warmupRounds + rounds + 1,
  );
  for (const fleet of [steady, churn.fleet]) {
    fleet.send('stop');
    await fleet.nextEvent('stats');
  }
  await Promise.all([server.process.kill(), steady.kill(), churn.fleet.kill()]);
  const quietP99 = percentile(quiet, 99);
  const stormP99 = percentile(stormy, 99);
  const result = { quiet_p99_ms: round2(quietP99), storm_p99_ms: round2(stormP99), storm_to_quiet_ratio: round2(stormP99 / quietP99) };
  log(`${label}: ${JSON.stringify(result)}`);
  return result;
}

function ratios(ours: Figures, peer: Figures) {
  return {
    eds_p99_ratio: round2(ours.eds_p99_ms / peer.eds_p99_ms),
    initial_sync_ratio: round2(ours.initial_sync_s / peer.initial_sync_s),
    storm_ratio: ours.storm_s === null || peer.storm_s === null ? null : round2(ours.storm_s / peer.storm_s),
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
  log(
    `${clients} streams, ${clusters} clusters with EDS, ${rounds} rounds (+${warmupRounds} warm-up), modes ${modes.join(', ')}, Switchyard with ${workers} xDS worker process(es)`,
  );
  if (stormClients !== undefined) {
    try {
      await runStormCheck(programs, stormClients);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const byMode: Record<string, Partial<Record<ServerKind, Figures>> & { ratios?: Ratios }> = {};
  try {
    for (const mode of modes) {
      const figures: Partial<Record<ServerKind, Figures>> = {};
      for (const kind of servers) figures[kind] = await measure(kind, mode, programs);
      const { switchyard: ours, 'go-control-plane': peer } = figures;
      byMode[mode] = ours && peer ? { ...figures, ratios: ratios(ours, peer) } : figures;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The headline ratios are the worst over the modes measured (only when both servers ran).
  const worst = (key: keyof Ratios) => {
    const each = Object.values(byMode).map((m) => m.ratios?.[key] ?? null);
    return each.includes(null) ? null : Math.max(...(each as number[]));
  };
  const headline = servers.length === 2 && {
    eds_p99_ratio: worst('eds_p99_ratio'),
    initial_sync_ratio: worst('initial_sync_ratio'),
    storm_ratio: worst('storm_ratio'),
    rss_ratio: worst('rss_ratio'),
  };
  const result = {
    peer: 'go-control-plane',
    peer_version: /github\.com\/envoyproxy\/go-control-plane (v\S+)/.exec(readFileSync(join(repoRoot, 'bench', 'go.mod'), 'utf8'))?.[1],
    clients,
    clusters,
    rounds,
    switchyard_workers: workers,
    ...byMode,
    ...headline,
    targets: { ratio: 1.0 },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function runStormCheck(programs: Programs, churning: number): Promise<void> {
  if (!servers.includes('switchyard')) throw new Error('--storm-check measures Switchyard: --servers must include it');
  const byMode: Record<string, Partial<Record<ServerKind, StormCheck>>> = {};
  for (const mode of modes) {
    byMode[mode] = {};
    for (const kind of servers) byMode[mode][kind] = await stormCheck(kind, mode, programs, churning);
  }
  const worst = Math.max(...Object.values(byMode).map((m) => m.switchyard!.storm_to_quiet_ratio));
  const result = {
    check: 'storm',
    peer: 'go-control-plane',
    steady_clients: clients,
    churning_clients: churning,
    clusters,
    rounds,
    switchyard_workers: workers,
    ...byMode,
    storm_to_quiet_ratio: worst,
    targets: { storm_to_quiet_ratio: 2.0 },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
