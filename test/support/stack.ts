import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { freePort, startHost, type Host, type ServiceModule } from '@switchyard/shared';
import type { NatsServer } from '@switchyard/shared/testing';
import { controlPlaneEnv, loadConfig } from '@switchyard/shared';
import { createControlPlaneService } from '@switchyard/control-plane';
import { echoClientConstructor, xdsBootstrap, type EchoReply } from '@switchyard/demo';

export const adminToken = 'test-admin-token';

export interface Stack {
  host: Host;
  grpcPort: number;
  apiUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

export type ModuleFactory = (env: Record<string, string>) => ServiceModule;

export const controlPlane: ModuleFactory = (env) => createControlPlaneService(loadConfig(controlPlaneEnv, env));

/**
 * Runs services in one host as `syctl up` does: one gRPC server, one admin server, one NATS
 * connection; every port free and chosen here.
 */
export async function startStack(
  nats: NatsServer,
  modules: ModuleFactory[],
  options: { grpcPort?: number; env?: Record<string, string> } = {},
): Promise<Stack> {
  const grpcPort = options.grpcPort ?? (await freePort());
  const apiPort = await freePort();
  const adminPort = await freePort();
  const env: Record<string, string> = {
    NATS_URL: nats.url,
    API_PORT: String(apiPort),
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  };
  const host = await startHost({
    name: 'all-in-one',
    services: modules.map((factory) => factory(env)),
    natsUrl: nats.url,
    grpcPort,
    adminPort,
    logLevel: env.LOG_LEVEL ?? 'silent',
    otlpEndpoint: undefined,
  });
  return {
    host,
    grpcPort: host.grpcPort,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stop: () => host.stop(),
  };
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
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result;
      lastError = new Error('condition still false');
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw lastError;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
