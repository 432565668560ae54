import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activatorEnv,
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  loadConfig,
  publishDurable,
  startHost,
  subscribe,
  type ActivationPoke,
  type Host,
  type NatsConnection,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { httpRequest } from '@switchyard/demo';
import { createActivatorService } from '../src/index.js';

/** The activator on a host of its own against a real nats-server, forwarding to a real HTTP backend. */
describe('activator service', () => {
  let nats: NatsServer;
  let host: Host;
  let nc: NatsConnection;
  let backend: Server;
  let backendPort = 0;
  let proxyPort = 0;
  const seen: IncomingHttpHeaders[] = [];
  const pokes: ActivationPoke[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    backend = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`backend ${req.url}`);
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    backendPort = (backend.address() as AddressInfo).port;
    const config = { ...loadConfig(activatorEnv, {}), ACTIVATOR_PORT: 0, ACTIVATOR_MAX_HELD: 2, ACTIVATOR_POKE_COALESCE_MS: 0 };
    host = await startHost({
      name: 'activator',
      services: [createActivatorService(config, { onListening: (port) => (proxyPort = port) })],
      natsUrl: nats.url,
      adminPort: 0,
      logLevel: 'silent',
      otlpEndpoint: undefined,
    });
    const observability = createObservability('test');
    const logger = createLogger('test', 'silent');
    nc = await connectNats({ servers: nats.url, name: 'test', logger, observability });
    subscribe(nc, 'activate', 'switchyard.activate.>', { logger, registry: observability.registry }, (m) => {
      pokes.push(m.payload);
    });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await host?.stop();
    await new Promise((resolve) => backend?.close(resolve));
    await nats?.dispose();
  });

  const send = (cluster: string | undefined, timeoutMs?: string) =>
    httpRequest(`http://127.0.0.1:${proxyPort}/hello?x=1`, {
      headers: {
        ...(cluster === undefined ? {} : { 'x-switchyard-revision': cluster }),
        ...(timeoutMs === undefined ? {} : { 'x-switchyard-timeout-ms': timeoutMs }),
      },
    });

  async function publishEndpoints(revision: string, generation: number, state: 'starting' | 'ready') {
    const { js } = await ensureStreams(nc);
    const endpoints = [{ id: 'i1', address: '127.0.0.1', port: backendPort, state }];
    await publishDurable(js, 'endpoints', {
      schemaVersion: 1,
      tenant: 'acme',
      service: 'api',
      revision,
      generation,
      endpoints,
      ts: Date.now(),
    });
  }

  it('holds a request until the revision has a ready endpoint, pokes with the held count, then forwards it', async () => {
    const answer = send('sy_acme_api_v1', '10000');
    await expect.poll(() => pokes.some((p) => p.revision === 'v1' && p.held === 1)).toBe(true);
    await publishEndpoints('v1', 1, 'starting');
    await publishEndpoints('v1', 2, 'ready');
    const { status, body } = await answer;
    expect(status).toBe(200);
    expect(body).toBe('backend /hello?x=1');
    expect(seen.at(-1)?.['x-switchyard-revision']).toBeUndefined();
    await expect.poll(() => pokes.filter((p) => p.revision === 'v1').at(-1)?.held).toBe(0);
  });

  it('forwards at once while the revision has ready endpoints', async () => {
    expect((await send('sy_acme_api_v1')).status).toBe(200);
  });

  it("answers 504 once the route's timeout passes", async () => {
    const started = Date.now();
    const { status, body } = await send('sy_acme_api_v2', '300');
    expect(status).toBe(504);
    expect(body).toMatch(/within the route's timeout/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('answers 503 with retry-after beyond the bound', async () => {
    const held = [send('sy_acme_api_v3', '1000'), send('sy_acme_api_v3', '1000')];
    await expect.poll(() => pokes.some((p) => p.revision === 'v3' && p.held === 2)).toBe(true);
    const rejected = await send('sy_acme_api_v3', '1000');
    expect(rejected.status).toBe(503);
    expect(rejected.headers['retry-after']).toBe('1');
    expect(rejected.body).toMatch(/already holds 2 requests \(the bound is 2\)/);
    expect((await Promise.all(held)).map((a) => a.status)).toEqual([504, 504]);
  });

  it.each([
    [undefined, undefined, /x-switchyard-revision must name a Switchyard revision cluster/],
    ['web-v1', undefined, /x-switchyard-revision must name/],
    ['sy_acme_api_v1', 'soon', /x-switchyard-timeout-ms must be a whole number/],
  ])('answers 400 naming the header (revision %s, timeout %s)', async (cluster, timeout, message) => {
    const { status, body } = await send(cluster, timeout);
    expect(status).toBe(400);
    expect(body).toMatch(message);
  });
});
