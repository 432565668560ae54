import { ensureStreams } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { createApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/index.js';
import type { ConfigStore } from '../../src/store/index.js';
import { StoreFixture } from '../store/fixture.js';

export const adminToken = 'admin-secret-for-tests';

/** The minimal body the issue requires to work as is (with 127.0.0.0/8 allowed). */
export const minimalGrpcService = {
  domains: ['echo.acme.test'],
  protocol: 'grpc',
  revisions: [
    { name: 'blue', endpoints: [{ address: '127.0.0.1', port: 50051 }] },
    { name: 'green', endpoints: [{ address: '127.0.0.1', port: 50052 }] },
  ],
  traffic: [
    { revision: 'blue', percent: 80 },
    { revision: 'green', percent: 20 },
  ],
};

/** Tests check bodies with expect(), field by field; a type per response would only restate the schemas. */

export type ResponseBody = any;

export interface Harness {
  fixture: StoreFixture;
  store: ConfigStore;
  api: ApiServer;
  registry: Registry;
  /** Sends a request through fastify's inject; `token` becomes the bearer token. */
  call(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    options?: CallOptions,
  ): Promise<{ status: number; body: ResponseBody; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string | undefined>;
}

/** A real nats-server, an open store on it, and an API server (not listening) on that store. */
export async function startHarness(overrides: Partial<ApiServerOptions> = {}): Promise<Harness> {
  const fixture = await StoreFixture.start();
  await ensureStreams(await fixture.connect());
  const registry = new Registry();
  const store = await fixture.openStore(registry);
  const api = await createApiServer({
    store,
    config: { API_PORT: 0, SWITCHYARD_ADMIN_TOKEN: adminToken, SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8, 10.0.0.0/8, fd00::/8' },
    logger: fixture.logger,
    registry,
    nodes: () => [],
    ...overrides,
  });
  return {
    fixture,
    store,
    api,
    registry,
    async call(method, url, options = {}) {
      const headers = Object.fromEntries(
        Object.entries(options.headers ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      const response = await api.app.inject({
        method,
        url,
        headers,
        ...(options.body === undefined
          ? {}
          : typeof options.body === 'string'
            ? { payload: options.body }
            : { payload: options.body as object }),
      });
      return { status: response.statusCode, body: response.body === '' ? undefined : response.json(), headers: response.headers };
    },
    async close() {
      await api.close();
      await fixture.close();
    },
  };
}
