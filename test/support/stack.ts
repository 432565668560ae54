import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import type { Host } from '@switchyard/shared';
import {
  activator,
  allServices,
  autoscaler,
  controlPlane,
  eventStreamer,
  startAllInOne,
  statsSink,
  type ServiceFactory,
} from '@switchyard/local';
import type { NatsServer } from '@switchyard/shared/testing';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  connectNats,
  consumeStream,
  createLogger,
  createObservability,
  subscribe,
  type NatsConnection,
  type PayloadOf,
  type SubjectKindName,
} from '@switchyard/shared';
import { echoClientConstructor, xdsBootstrap, type EchoReply } from '@switchyard/demo';

export const adminToken = 'test-admin-token';

export interface Stack {
  host: Host;
  grpcPort: number;
  apiUrl: string;
  adminUrl: string;
  /** Where Envoys configured by this stack listen (loopback). */
  envoyHttpPort: number;
  envoyHttpsPort: number;
  /** Every port but gRPC's, to start the same stack again (a restart keeps what Envoy was told). */
  ports: StackPorts;
  stop(): Promise<void>;
}

export interface StackPorts {
  api: number;
  admin: number;
  envoyHttp: number;
  envoyHttps: number;
}

export { activator, allServices, autoscaler, controlPlane, eventStreamer, statsSink, type ServiceFactory };

/**
 * The gRPC echo demo as a managed revision's command: the local provider runs it with PORT
 * set. It is the build output (CI builds before it tests).
 */
export const grpcEchoCommand = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/grpc-echo-main.js')];

/** The HTTP echo demo as a managed revision's command (answers `?delay_ms=`, `/healthz`; env `REVISION`, `FAIL_RATE`). */
export const httpEchoCommand = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/http-echo-main.js')];

/** The repository root, found from this file whether it runs from source or from dist. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}

/**
 * Settings that make the loops fast enough for tests: load reports every 200 ms, a short
 * lease (the autoscaler acts within a second of starting), short drains and instance stops.
 * Every name is in the services' env schemas (packages/shared/src/config.ts).
 */
export const fastEnv: Record<string, string> = {
  LOAD_REPORTING_INTERVAL_MS: '200',
  STATS_STALE_AFTER_MS: '2000',
  AUTOSCALER_LEASE_TTL_MS: '1000',
  DRAIN_TIMEOUT_MS: '5000',
  INSTANCE_START_TIMEOUT_MS: '15000',
  INSTANCE_STOP_TIMEOUT_MS: '2000',
  HDS_REPORT_INTERVAL_MS: '300',
};

/**
 * A port free now, below Linux's ephemeral range (32768–60999). A port the OS hands out for
 * `listen(0)` comes from that range, where any process's next outgoing connection may take it
 * before the stack binds it (seen in CI beside kube-apiserver and etcd); one below it cannot be.
 */
async function stackPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * Runs services in one host as `syctl up` does (through the same composition): one gRPC
 * server, one admin server; every port free and chosen here, Envoy's listeners included. On a
 * server started with passwords each service connects as its own identity.
 */
export async function startStack(
  nats: NatsServer,
  modules: readonly ServiceFactory[],
  options: { grpcPort?: number; env?: Record<string, string>; ports?: StackPorts } = {},
): Promise<Stack> {
  const apiPort = options.ports?.api ?? (await stackPort());
  const adminPort = options.ports?.admin ?? (await stackPort());
  const stack = await startAllInOne({
    natsUrl: nats.url,
    ...(nats.passwords ? { natsPasswords: nats.passwords } : {}),
    env: {
      SWITCHYARD_ADMIN_TOKEN: adminToken,
      SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...options.env,
    },
    services: modules,
    grpcPort: options.grpcPort ?? (await stackPort()),
    adminPort,
    apiPort,
    envoyListeners: { http: options.ports?.envoyHttp ?? (await stackPort()), https: options.ports?.envoyHttps ?? (await stackPort()) },
  });
  return {
    host: stack.host,
    grpcPort: stack.grpcPort,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    envoyHttpPort: Number(stack.env.ENVOY_HTTP_PORT),
    envoyHttpsPort: Number(stack.env.ENVOY_HTTPS_PORT),
    ports: { api: apiPort, admin: adminPort, envoyHttp: Number(stack.env.ENVOY_HTTP_PORT), envoyHttps: Number(stack.env.ENVOY_HTTPS_PORT) },
    stop: () => stack.stop(),
  };
}

/**
 * How many publishes and subscriptions NATS refused the stack's services
 * (`switchyard_nats_permission_denied_total`); undefined when no service connected with an identity.
 */
export async function refusedNatsOperations(stack: Stack): Promise<number | undefined> {
  const refused = stack.host.runtime.observability.registry.getSingleMetric('switchyard_nats_permission_denied_total');
  return refused === undefined ? undefined : (await refused.get()).values.reduce((n, v) => n + v.value, 0);
}

/** A small client of the management API for tests. */
export class Api {
  constructor(
    readonly url: string,
    readonly token = adminToken,
  ) {}

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any; etag: string | null }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, etag: res.headers.get('etag') };
  }

  /** PUT over an existing record (If-Match with its current ETag), or a create when there is none. */
  async replace(path: string, body: unknown): Promise<any> {
    const current = await this.call('GET', path);
    return this.ok('PUT', path, body, current.etag === null || current.status === 404 ? {} : { 'if-match': current.etag });
  }

  async ok(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
    const res = await this.call(method, path, body, headers);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

let registered = false;

export interface EchoClient {
  say(delayMs?: number): Promise<EchoReply>;
  close(): void;
}

/** A proxyless gRPC client (`@grpc/grpc-js-xds`) getting its config from the control plane on `grpcPort`. */
export function xdsEchoClient(domain: string, grpcPort: number, nodeId: string): EchoClient {
  if (!registered) {
    xds.register();
    registered = true;
  }
  const Echo = echoClientConstructor();
  const client = new Echo(`xds:///${domain}`, grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': xdsBootstrap(`127.0.0.1:${grpcPort}`, nodeId),
  }) as unknown as grpc.Client & {
    Say(
      req: { message: string; delay_ms: number },
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
    ): void;
  };
  return {
    say: (delayMs = 0) =>
      new Promise((resolve, reject) =>
        client.Say({ message: 'hi', delay_ms: delayMs }, { deadline: Date.now() + 10_000 + delayMs }, (err, reply) =>
          err || !reply ? reject(err) : resolve(reply),
        ),
      ),
    close: () => client.close(),
  };
}

/** Polls until `check` stops throwing or returns true, or fails with its last error. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000, intervalMs = 50): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result as Exclude<T, false>;
      lastError = new Error('condition still false');
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw lastError;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** What a {@link LoadLoop} saw: replies per instance and per revision, and every failure. */
export interface LoadTally {
  ok: number;
  failed: number;
  errors: string[];
  byInstance: Map<string, number>;
  byRevision: Map<string, number>;
}

function emptyTally(): LoadTally {
  return { ok: 0, failed: 0, errors: [], byInstance: new Map(), byRevision: new Map() };
}

/**
 * Keeps `workers` calls in flight through one xDS client, each held `delayMs` by the echo
 * server, until stopped. `setWorkers` changes the load while it runs; `mark` starts a new
 * tally (for a phase of the test) while the total keeps counting.
 */
export class LoadLoop {
  readonly total = emptyTally();
  private phase = emptyTally();
  private running = 0;
  private wanted: number;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly client: EchoClient,
    workers: number,
    private readonly delayMs: number,
  ) {
    this.wanted = workers;
    this.spawn();
  }

  setWorkers(workers: number): void {
    this.wanted = workers;
    this.spawn();
  }

  /** Starts a new phase tally and returns the previous one. */
  mark(): LoadTally {
    const previous = this.phase;
    this.phase = emptyTally();
    return previous;
  }

  get current(): LoadTally {
    return this.phase;
  }

  async stop(): Promise<LoadTally> {
    this.stopped = true;
    await Promise.all(this.loops);
    return this.total;
  }

  private spawn(): void {
    while (this.running < this.wanted && !this.stopped) {
      this.running++;
      this.loops.push(this.work());
    }
  }

  private async work(): Promise<void> {
    // A worker leaves when there are more than wanted (check and decrement happen in one turn).
    while (!this.stopped && this.running <= this.wanted) {
      try {
        const reply = await this.client.say(this.delayMs);
        for (const tally of [this.total, this.phase]) {
          tally.ok++;
          tally.byInstance.set(reply.instance, (tally.byInstance.get(reply.instance) ?? 0) + 1);
          tally.byRevision.set(reply.revision, (tally.byRevision.get(reply.revision) ?? 0) + 1);
        }
      } catch (err) {
        for (const tally of [this.total, this.phase]) {
          tally.failed++;
          if (tally.errors.length < 20) tally.errors.push(String((err as Error).message ?? err));
        }
      }
    }
    this.running--;
  }
}

/** A NATS connection of the test's own that records what the services publish. */
export class BusRecorder {
  private readonly consumers: { stop(): Promise<void> }[] = [];

  private constructor(
    readonly nc: NatsConnection,
    private readonly deps: Parameters<typeof subscribe>[3],
  ) {}

  static async connect(nats: NatsServer): Promise<BusRecorder> {
    const logger = createLogger('test-bus', 'silent');
    const observability = createObservability('test-bus');
    // On a server that enforces permissions, the recorder is what it stands for: a read-only tool.
    const auth = nats.passwords ? { credentials: nats.credentials('tools'), identity: 'tools' as const } : {};
    const nc = await connectNats({ servers: nats.url, name: 'test-bus', logger, observability, ...auth });
    return new BusRecorder(nc, { logger, registry: observability.registry });
  }

  /** Every message of `kind` on `pattern` from now on (JetStream subjects are delivered to core subscribers too). */
  record<K extends SubjectKindName>(kind: K, pattern: string): PayloadOf<K>[] {
    const seen: PayloadOf<K>[] = [];
    subscribe(this.nc, kind, pattern, this.deps, (m) => {
      seen.push(m.payload);
    });
    return seen;
  }

  /** Every message of `kind` on `pattern` stored in JetStream `stream`, from its first, then live. */
  async replay<K extends SubjectKindName>(kind: K, stream: string, pattern: string): Promise<PayloadOf<K>[]> {
    const seen: PayloadOf<K>[] = [];
    const consumer = await consumeStream(this.nc, kind, { stream, pattern, replay: { from: 'all' } }, this.deps, (m) => {
      seen.push(m.payload);
    });
    this.consumers.push(consumer);
    return seen;
  }

  async close(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.stop()));
    await this.nc.close();
  }
}

export interface ManagedInstance {
  id: string;
  address: string;
  port: number;
  state: 'starting' | 'ready' | 'draining';
}

/** A revision's instances as the autoscaler's admin route shows them (none when it manages no such revision). */
export async function managedInstances(stack: Stack, revision: string): Promise<ManagedInstance[]> {
  const res = await fetch(`${stack.adminUrl}/v1/autoscaler`);
  const body = (await res.json()) as { revisions: { revision: string; instances: ManagedInstance[] }[] };
  return body.revisions.find((r) => r.revision === revision)?.instances ?? [];
}
