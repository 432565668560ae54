import * as grpc from '@grpc/grpc-js';
import {
  connectNats,
  createLogger,
  createObservability,
  grpcService,
  loadConfig,
  loadGrpcPackage,
  protoFiles,
  startHost,
  statsSinkEnv,
  subscribe,
  type Host,
  type LoadSample,
  type NatsConnection,
  type ServiceModule,
} from '@switchyard/shared';
import type { NatsServer } from '@switchyard/shared/testing';
import { createStatsSinkService, type StatsSinkSettings } from '../src/index.js';

/** Polls `probe` until it returns something other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface SinkUnderTest {
  host: Host;
  target: string;
  /** Every load sample seen on switchyard.load.>, validated against its schema. */
  samples: LoadSample[];
  /** The latest sample of a revision published after `since`. */
  latest(revision: string, since?: number): LoadSample | undefined;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  stop(): Promise<void>;
}

export const testSettings = {
  LOAD_REPORTING_INTERVAL_MS: 200,
  STATS_STALE_AFTER_MS: 1000,
};

/** A stats-sink on a host of its own (gRPC and admin on free ports) against a real nats-server. */
export async function startSink(
  nats: NatsServer,
  settings: Partial<StatsSinkSettings> = {},
  alongside: ServiceModule[] = [],
): Promise<SinkUnderTest> {
  const config = { ...loadConfig(statsSinkEnv, {}), ...testSettings, ...settings };
  const host = await startHost({
    name: 'stats-sink',
    services: [...alongside, createStatsSinkService(config)],
    natsUrl: nats.url,
    grpcPort: 0,
    adminPort: 0,
    logLevel: 'silent',
    otlpEndpoint: undefined,
  });
  const observability = createObservability('test-subscriber');
  const logger = createLogger('test', 'silent');
  const nc: NatsConnection = await connectNats({ servers: nats.url, name: 'test-subscriber', logger, observability });
  const samples: LoadSample[] = [];
  subscribe(nc, 'load', 'switchyard.load.>', { logger, registry: observability.registry }, (m) => {
    samples.push(m.payload);
  });
  await nc.flush();
  const address = host.admin.server.address();
  const adminPort = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    host,
    target: `127.0.0.1:${host.grpcPort}`,
    samples,
    latest: (revision, since = 0) => samples.findLast((s) => s.revision === revision && s.ts >= since),
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      return metricValue(text, name, labels);
    },
    stop: async () => {
      await nc.close();
      await host.stop();
    },
  };
}

/** The value of the first series of `name` carrying all of `labels` in Prometheus text format. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = new Map([...(match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present.get(k) === v)) return Number(match[4]);
  }
  return undefined;
}

const pkg = loadGrpcPackage([protoFiles.metrics, protoFiles.lrs]);
const MetricsServiceClient = grpcService(pkg, 'envoy.service.metrics.v3.MetricsService');
const LoadReportingClient = grpcService(pkg, 'envoy.service.load_stats.v3.LoadReportingService');

export interface CallStatus {
  code: grpc.status;
  details: string;
}

/** A client stream the test writes proto-JSON messages to, then ends (waiting for its status) or cancels. */
abstract class TestStream {
  abstract readonly status: Promise<CallStatus>;
  protected abstract readonly call: grpc.ClientWritableStream<Record<string, unknown>> & { cancel(): void };

  constructor(protected readonly client: grpc.Client) {}

  send(message: Record<string, unknown>): void {
    this.call.write(message);
  }

  async end(): Promise<CallStatus> {
    this.call.end();
    const status = await this.status;
    this.client.close();
    return status;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** A MetricsService stream as Envoy's metrics_service sink opens it. */
export class MetricsStream extends TestStream {
  readonly status: Promise<CallStatus>;
  protected readonly call: grpc.ClientWritableStream<Record<string, unknown>>;

  constructor(target: string) {
    super(new MetricsServiceClient(target, grpc.credentials.createInsecure()));
    let settle: (status: CallStatus) => void = () => undefined;
    this.status = new Promise((resolve) => (settle = resolve));
    const open = this.client as unknown as {
      StreamMetrics(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<Record<string, unknown>>;
    };
    this.call = open.StreamMetrics((err) => settle(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }));
  }
}

/** An LRS stream following lrs.proto: node in the first request, the server answers with what to report. */
export class LrsStream extends TestStream {
  readonly responses: Record<string, unknown>[] = [];
  readonly status: Promise<CallStatus>;
  protected readonly call: grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;

  constructor(target: string) {
    super(new LoadReportingClient(target, grpc.credentials.createInsecure()));
    const open = this.client as unknown as {
      StreamLoadStats(): grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
    };
    this.call = open.StreamLoadStats();
    this.call.on('data', (response: Record<string, unknown>) => this.responses.push(response));
    this.status = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
      this.call.on('error', () => undefined);
    });
  }

  async response(index: number): Promise<Record<string, unknown>> {
    return until(() => this.responses[index], `LRS response #${index}`);
  }
}

/** Sends arbitrary bytes as the messages of a client stream, as a broken client would. */
export function rawClientStream(target: string, path: string, messages: Buffer[]): Promise<CallStatus> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest<Buffer, Buffer>(
      path,
      (b) => b,
      (b) => b,
      (err) => {
        client.close();
        resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' });
      },
    );
    for (const message of messages) call.write(message);
  });
}
