import * as grpc from '@grpc/grpc-js';
import {
  buckets,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  decodeMessage,
  ensureStreams,
  messageCounters,
  openBucket,
  type JetStreamClient,
  type Logger,
  type KV,
  type NatsConnection,
  type Observability,
  type PayloadOf,
  type ServiceRecord,
  type SubjectKindName,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { startHealthChecking, type HealthChecking } from '../src/health.js';
import { eventStreamerMetrics } from '../src/metrics.js';

export const logger: Logger = createLogger('event-streamer-test', process.env.TEST_LOG_LEVEL ?? 'silent');

export interface Bus {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  kv: KV;
  observability: Observability;
  close(): Promise<void>;
}

/** A real nats-server with Switchyard's streams and config bucket. */
export async function startBus(): Promise<Bus> {
  const server = await NatsServer.start();
  const observability = createObservability('event-streamer-test');
  const nc = await connectNats({ servers: server.url, name: 'test', logger, observability });
  const { js } = await ensureStreams(nc);
  const kv = await openBucket(nc, buckets.config);
  return {
    server,
    nc,
    js,
    kv,
    observability,
    close: async () => {
      await nc.close();
      await server.dispose();
    },
  };
}

export async function putService(kv: KV, record: ServiceRecord): Promise<void> {
  await kv.put(configKeys.service(record.tenant, record.name), JSON.stringify(record));
}

/** A gRPC server on a free port with the given services added. */
export async function startGrpc(
  register: (server: grpc.Server) => void,
): Promise<{ server: grpc.Server; address: string; stop(): Promise<void> }> {
  const server = new grpc.Server();
  register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    address: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** Polls `condition` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects the typed messages published on a subject pattern (core NATS sees JetStream publishes too). */
export function collect<K extends SubjectKindName>(bus: Bus, kind: K, pattern: string) {
  const items: PayloadOf<K>[] = [];
  const { dropped } = messageCounters(bus.observability.registry);
  const sub = bus.nc.subscribe(pattern, {
    callback: (_err, msg) => {
      const decoded = decodeMessage(kind, msg, logger, dropped);
      if (decoded !== undefined) items.push(decoded.payload);
    },
  });
  return { items, stop: () => sub.unsubscribe() };
}

/** The current value of a counter or gauge for the given labels (0 if never set). */
export async function metricValue(
  bus: { observability: Observability },
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = bus.observability.registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return match?.value ?? 0;
}

/** Health checking (HDS on `grpcServer`) against the test bus, k = 3. */
export function startHealth(
  bus: Bus,
  grpcServer: grpc.Server,
  options: { reportIntervalMs: number; now?: () => number },
): Promise<HealthChecking> {
  return startHealthChecking({
    nc: bus.nc,
    js: bus.js,
    grpcServer,
    logger,
    registry: bus.observability.registry,
    metrics: eventStreamerMetrics(bus.observability.registry),
    checkersPerEndpoint: 3,
    ...options,
  });
}
