import * as grpc from '@grpc/grpc-js';
import { Agent } from 'node:http';
import { httpRequest } from './http-client.js';
import { echoClientConstructor, type EchoReply, type EchoRequest } from './grpc-echo.js';

export interface LoadOptions {
  /** `xds:///<domain>` (proxyless through the control plane), `host:port` (gRPC direct) or `http://…` (through Envoy). */
  target: string;
  concurrency: number;
  durationMs: number;
  /** Each call is held open this long by the demo service, to produce in-flight requests. */
  delayMs: number;
  /** Host header for HTTP targets (the service domain when going through Envoy). */
  host?: string;
  /** Called about once a second with the running totals. */
  onProgress?: (report: LoadReport) => void;
  signal?: AbortSignal;
}

export interface LoadReport {
  calls: number;
  ok: number;
  failed: number;
  /** Answers per instance and revision, e.g. {"green 127.0.0.1:4001": 12}. */
  byInstance: Record<string, number>;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  elapsedMs: number;
}

/** The bootstrap a proxyless gRPC client needs to get its config from a Switchyard control plane. */
export function xdsBootstrap(controlPlane: string, nodeId: string): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: controlPlane, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'switchyard-load', locality: {} },
  });
}

let xdsRegistered = false;

/**
 * Points this process's proxyless gRPC clients at a control plane. grpc-js-xds reads its
 * bootstrap once, so this must run before the first xds:/// channel; later calls are ignored.
 */
export async function useControlPlane(controlPlane: string, nodeId: string): Promise<void> {
  if (xdsRegistered) return;
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = xdsBootstrap(controlPlane, nodeId);
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  xdsRegistered = true;
}

type Caller = () => Promise<{ instance: string }>;

function grpcCaller(options: LoadOptions): { call: Caller; close(): void } {
  const Echo = echoClientConstructor();
  const client = new Echo(options.target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Say(req: EchoRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): void;
  };
  const call: Caller = () =>
    new Promise((resolve, reject) =>
      client.Say({ message: 'load', delay_ms: options.delayMs }, { deadline: Date.now() + options.delayMs + 10_000 }, (err, reply) =>
        err || reply === undefined ? reject(err ?? new Error('empty reply')) : resolve({ instance: `${reply.revision} ${reply.instance}` }),
      ),
    );
  return { call, close: () => client.close() };
}

function httpCaller(options: LoadOptions): { call: Caller; close(): void } {
  const url = new URL(options.target);
  url.searchParams.set('delay_ms', String(options.delayMs));
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const call: Caller = async () => {
    const res = await httpRequest(url, { host: options.host, agent, timeoutMs: options.delayMs + 10_000 });
    if (res.status >= 300) throw new Error(`HTTP ${res.status}`);
    const body = JSON.parse(res.body) as { instance?: string; revision?: string };
    return { instance: `${body.revision ?? '?'} ${body.instance ?? '?'}` };
  };
  return { call, close: () => agent.destroy() };
}

/** Runs `concurrency` workers calling the target back to back for `durationMs`. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const caller = options.target.startsWith('http://') || options.target.startsWith('https://') ? httpCaller(options) : grpcCaller(options);
  const latencies: number[] = [];
  const report: LoadReport = { calls: 0, ok: 0, failed: 0, byInstance: {}, errors: {}, p50Ms: 0, p99Ms: 0, elapsedMs: 0 };
  const started = Date.now();
  const deadline = started + options.durationMs;
  const progress = options.onProgress ? setInterval(() => options.onProgress?.(finish(report, latencies, started)), 1000) : undefined;
  const worker = async () => {
    while (Date.now() < deadline && !options.signal?.aborted) {
      const t0 = performance.now();
      report.calls++;
      try {
        const { instance } = await caller.call();
        report.ok++;
        report.byInstance[instance] = (report.byInstance[instance] ?? 0) + 1;
        latencies.push(performance.now() - t0);
      } catch (err) {
        report.failed++;
        const reason = err instanceof Error ? err.message.slice(0, 120) : String(err);
        report.errors[reason] = (report.errors[reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  if (progress) clearInterval(progress);
  caller.close();
  return finish(report, latencies, started);
}

function finish(report: LoadReport, latencies: number[], started: number): LoadReport {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number));
  return {
    ...report,
    byInstance: { ...report.byInstance },
    errors: { ...report.errors },
    p50Ms: Math.round(at(0.5)),
    p99Ms: Math.round(at(0.99)),
    elapsedMs: Date.now() - started,
  };
}
