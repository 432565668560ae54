import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse, stringify } from 'yaml';
import {
  ConfigError,
  NatsServer,
  autoscalerEnv,
  controlPlaneEnv,
  eventStreamerEnv,
  loadConfig,
  startHost,
  statsSinkEnv,
  type Host,
} from '@switchyard/shared';
import { createControlPlaneService } from '@switchyard/control-plane';
import { createStatsSinkService } from '@switchyard/stats-sink';
import { createEventStreamerService } from '@switchyard/event-streamer';
import { createAutoscalerService } from '@switchyard/autoscaler';
import { demoPlan, runLoad, useControlPlane } from '@switchyard/demo';
import { ApiClient } from '../client.js';
import { cliOf, type Cli } from '../cli.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { progressText } from './load.js';

interface UpOptions {
  data: string;
  grpcPort: string;
  adminPort: string;
  apiPort: string;
  demo: boolean;
  demoLoad: boolean;
}

const repoRoot = fileURLToPath(new URL('../../../../../', import.meta.url));

/**
 * `syctl up`: the whole stack on one machine — NATS (started when none is reachable), the
 * four services in this process on one gRPC port, the demo, and Envoy when its binary is on
 * PATH. Ctrl-C stops everything it started.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Run the whole stack locally (all-in-one) with a demo; Ctrl-C stops everything')
    .option('--data <dir>', 'where NATS data, the admin token and the Envoy bootstrap go', '.switchyard')
    .option('--grpc-port <port>', 'the one gRPC port for xDS, LRS, metrics and HDS', '18000')
    .option('--admin-port <port>', 'metrics and health probes', '9400')
    .option('--api-port <port>', 'management API', '8080')
    .option('--no-demo', 'do not create the demo tenants and services')
    .option('--no-demo-load', 'do not run the demo load after start')
    .action(async (opts: UpOptions, command: Command) => {
      await up(cliOf(command), opts);
    });
}

async function up(cli: Cli, opts: UpOptions): Promise<void> {
  const say = (line: string) => cli.io.stdout(`${line}\n`);
  const data = resolve(opts.data);
  // Only Switchyard's own user may enter: tenant instances run as other uids.
  await mkdir(data, { recursive: true, mode: 0o700 });
  await chmod(data, 0o700);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };

  let natsUrl = cli.io.env.NATS_URL;
  if (natsUrl === undefined) {
    if (await listening(4222)) {
      natsUrl = 'nats://127.0.0.1:4222';
      say(`NATS        using the server already listening on ${natsUrl}`);
    } else {
      const nats = await NatsServer.start({ storeDir: join(data, 'nats'), port: 4222, detached: true }).catch((err: unknown) => {
        throw new CliError(`cannot start nats-server: ${(err as Error).message}`, ExitCode.usage);
      });
      stops.push(() => nats.stop());
      natsUrl = nats.url;
      say(`NATS        started ${natsUrl} (JetStream data in ${join(data, 'nats')})`);
    }
  }

  const adminToken = cli.io.env.SWITCHYARD_ADMIN_TOKEN ?? (await adminTokenIn(data));
  const env: Record<string, string | undefined> = {
    SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
    LOG_LEVEL: 'warn',
    ...cli.io.env,
    NATS_URL: natsUrl,
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    API_PORT: opts.apiPort,
  };
  let host: Host;
  try {
    const controlPlane = loadConfig(controlPlaneEnv, env);
    host = await startHost({
      name: 'all-in-one',
      services: [
        createControlPlaneService(controlPlane),
        createStatsSinkService(loadConfig(statsSinkEnv, env)),
        createEventStreamerService(loadConfig(eventStreamerEnv, env)),
        createAutoscalerService(loadConfig(autoscalerEnv, env)),
      ],
      natsUrl,
      grpcPort: port('--grpc-port', opts.grpcPort),
      adminPort: port('--admin-port', opts.adminPort),
      logLevel: controlPlane.LOG_LEVEL,
      otlpEndpoint: controlPlane.OTEL_EXPORTER_OTLP_ENDPOINT,
    });
  } catch (err) {
    await stopAll();
    if (err instanceof ConfigError) throw usageError(err.message);
    throw err;
  }
  stops.push(() => host.stop());
  const apiUrl = `http://127.0.0.1:${opts.apiPort}`;
  say(`services    control-plane, stats-sink, event-streamer, autoscaler in this process`);
  say(`xDS/gRPC    127.0.0.1:${host.grpcPort}   (ADS, LRS, MetricsService, HDS, Watch)`);
  say(`API         ${apiUrl}   admin token in ${join(data, 'admin-token')}`);
  say(`metrics     http://127.0.0.1:${opts.adminPort}/metrics`);

  const envoy = await startEnvoy(data, host.grpcPort, say);
  if (envoy) stops.push(() => stopChild(envoy));

  const stopped = new Promise<void>((resolveStop) => {
    const onSignal = () => {
      say('\nstopping: instances, services, NATS…');
      void stopAll().then(resolveStop);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });

  if (opts.demo) {
    const api = new ApiClient(apiUrl, adminToken);
    await applyDemo(api, say);
    say('');
    say('try:');
    say(`  export SWITCHYARD_TOKEN=$(cat ${join(data, 'admin-token')})`);
    say('  syctl service list --tenant globex');
    say('  syctl load echo.globex.test --concurrency 40 --duration 30s');
    say('  syctl traffic set echo blue=50 green=50 --tenant globex');
    say(
      `  syctl deploy echo --tenant globex --command "${process.execPath} ${join(repoRoot, 'packages/demo/dist/src/grpc-echo-main.js')}"`,
    );
    say('  syctl events --follow');
    if (opts.demoLoad) await demoLoad(api, host.grpcPort, say);
  }
  say('\nrunning; Ctrl-C stops everything');
  await stopped;
}

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`${flag} must be a port number (got "${value}")`);
  return n;
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

async function adminTokenIn(data: string): Promise<string> {
  const file = join(data, 'admin-token');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const token = randomBytes(24).toString('base64url');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/** Creates the demo tenants and services unless they exist (a second `syctl up` keeps what is there). */
async function applyDemo(api: ApiClient, say: (line: string) => void): Promise<void> {
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

interface StatusBody {
  status: { revisions: { name: string; percent: number; endpoints: { state: string }[] }[] };
}

async function readyInstances(api: ApiClient, path: string): Promise<Record<string, number>> {
  const { body } = await api.request<StatusBody>('GET', path);
  return Object.fromEntries(body.status.revisions.map((r) => [r.name, r.endpoints.filter((e) => e.state === 'ready').length]));
}

/** Shows routing, the 80/20 split and scaling: load on the gRPC demo through a proxyless client. */
async function demoLoad(api: ApiClient, grpcPort: number, say: (line: string) => void): Promise<void> {
  const path = '/v1/tenants/globex/services/echo';
  const deadline = Date.now() + 60_000;
  while (Object.values(await readyInstances(api, path)).some((n) => n === 0)) {
    if (Date.now() > deadline) {
      say('demo load skipped: the demo instances did not become ready within 60 s (see the logs)');
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  say('\ndemo load: 40 concurrent calls for 20 s to xds:///echo.globex.test (each held 200 ms); watch the split and the instances');
  await useControlPlane(`127.0.0.1:${grpcPort}`, `syctl-up-${process.pid}`);
  const report = await runLoad({
    target: 'xds:///echo.globex.test',
    concurrency: 40,
    durationMs: 20_000,
    delayMs: 200,
    onProgress: (r) => {
      void readyInstances(api, path).then(
        (ready) =>
          say(
            `${progressText(r)}   ready instances ${Object.entries(ready)
              .map(([rev, n]) => `${rev}=${n}`)
              .join(' ')}`,
          ),
        () => say(progressText(r)),
      );
    },
  });
  say(`demo load done: ${report.ok} ok, ${report.failed} failed, p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms`);
}

/** Starts Envoy with deploy/envoy/bootstrap.yaml pointed at this process, when an envoy binary is on PATH. */
async function startEnvoy(data: string, grpcPort: number, say: (line: string) => void): Promise<ChildProcess | undefined> {
  const found = spawnSync('envoy', ['--version'], { stdio: 'ignore' });
  if (found.error !== undefined || found.status !== 0) {
    say('Envoy       no envoy binary on PATH: the gRPC demo runs proxyless through @grpc/grpc-js-xds.');
    say('            For HTTP through Envoy: docker compose -f deploy/compose/docker-compose.yml up, or put envoy on PATH');
    say('            (https://www.envoyproxy.io/docs/envoy/latest/start/install) and run syctl up again.');
    return undefined;
  }
  const bootstrap = parse(await readFile(join(repoRoot, 'deploy/envoy/bootstrap.yaml'), 'utf8')) as {
    static_resources: {
      clusters: {
        name: string;
        load_assignment: {
          endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[];
        };
      }[];
    };
  };
  // In all-in-one mode every Switchyard gRPC service shares one local port.
  for (const cluster of bootstrap.static_resources.clusters) {
    if (!['control-plane', 'stats-sink', 'event-streamer'].includes(cluster.name)) continue;
    for (const group of cluster.load_assignment.endpoints) {
      for (const lb of group.lb_endpoints) lb.endpoint.address.socket_address = { address: '127.0.0.1', port_value: grpcPort };
    }
  }
  const file = join(data, 'envoy-bootstrap.yaml');
  await writeFile(file, stringify(bootstrap));
  const envoy = spawn('envoy', ['-c', file, '--service-node', `local-${process.pid}`, '--service-cluster', 'switchyard-edge'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  say(`Envoy       started (pid ${envoy.pid}) with ${file}; HTTP on :8080, e.g. curl -H 'Host: web.acme.test' http://127.0.0.1:8080/`);
  return envoy;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await exited;
}
