import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activatorEnv,
  buckets,
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  loadConfig,
  openBucket,
  publishDurable,
  serviceSpec,
  startHost,
  subscribe,
  type ActivationPoke,
  type Host,
  type NatsConnection,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { echoClientConstructor, httpRequest, startGrpcEcho, type EchoReply } from '@switchyard/demo';
import { createActivatorService } from '../src/index.js';

const domain = 'api.acme.test';
/** What a proxyless client learns from xDS: a channel to the activator with the service's domain as authority. */
const grpcDomain = 'rpc.acme.test';

/** The activator on a host of its own against a real nats-server, forwarding to real HTTP and gRPC backends. */
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
    const bucket = await openBucket(nc, buckets.config);
    const record = (name: string, spec: object) =>
      JSON.stringify({ schemaVersion: 1, tenant: 'acme', name, spec: serviceSpec.parse(spec), updatedAt: 1 });
    const revisions = (names: string[]) => names.map((name) => ({ name, command: './server', env: {} }));
    await bucket.put(
      'services.acme.api',
      record('api', { domains: [domain], revisions: revisions(['v1', 'v2', 'v3']), traffic: [{ revision: 'v1', percent: 100 }] }),
    );
    await bucket.put(
      'services.acme.rpc',
      record('rpc', {
        domains: [grpcDomain],
        protocol: 'grpc',
        revisions: revisions(['g1', 'g2']),
        traffic: [{ revision: 'g1', percent: 100 }],
      }),
    );
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
        host: domain,
        ...(cluster === undefined ? {} : { 'x-switchyard-revision': cluster }),
        ...(timeoutMs === undefined ? {} : { 'x-switchyard-timeout-ms': timeoutMs }),
      },
    });

  async function publishEndpoints(revision: string, generation: number, state: 'starting' | 'ready', service = 'api', port = backendPort) {
    const { js } = await ensureStreams(nc);
    const endpoints = [{ id: 'i1', address: '127.0.0.1', port, state }];
    await publishDurable(js, 'endpoints', {
      schemaVersion: 1,
      tenant: 'acme',
      service,
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
    ['web-v1', undefined, /x-switchyard-revision must name/],
    ['sy_acme_api_v1', 'soon', /x-switchyard-timeout-ms must be a whole number/],
    ['sy_acme_rpc_g1', undefined, /not a revision of the service this host names/],
    ['sy_other_api_v1', undefined, /not a revision of the service this host names/],
  ])('answers 400 naming the header (revision %s, timeout %s)', async (cluster, timeout, message) => {
    const { status, body } = await send(cluster, timeout);
    expect(status).toBe(400);
    expect(body).toMatch(message);
  });

  it('answers 404 for a host no service serves', async () => {
    const { status, body } = await httpRequest(`http://127.0.0.1:${proxyPort}/`, {
      headers: { host: 'nowhere.test', 'x-switchyard-revision': 'sy_acme_api_v1' },
    });
    expect(status).toBe(404);
    expect(body).toMatch(/no Switchyard service serves the host nowhere.test/);
  });

  describe('gRPC over HTTP/2, as a proxyless client sends it (no revision header)', () => {
    const Echo = echoClientConstructor();
    type Say = (request: object, options: object, callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void) => void;
    let client: grpc.Client & { Say: Say };
    const backends: { close(): Promise<void> }[] = [];

    beforeAll(() => {
      client = new Echo(`127.0.0.1:${proxyPort}`, grpc.credentials.createInsecure(), {
        'grpc.default_authority': grpcDomain,
      }) as unknown as typeof client;
    });
    afterAll(async () => {
      client?.close();
      await Promise.all(backends.map((b) => b.close()));
    });

    const say = (message: string, deadlineMs = 20_000) =>
      new Promise<{ reply?: EchoReply; error?: grpc.ServiceError }>((resolve) =>
        client.Say({ message }, { deadline: Date.now() + deadlineMs }, (error, reply) =>
          resolve(error ? { error } : { ...(reply ? { reply } : {}) }),
        ),
      );

    it('holds the call for the revision the split picks, then forwards it over HTTP/2', async () => {
      const backend = await startGrpcEcho(0, { revision: 'g1', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
      backends.push(backend);
      const answer = say('hello');
      await expect.poll(() => pokes.some((p) => p.service === 'rpc' && p.revision === 'g1' && p.held === 1)).toBe(true);
      await publishEndpoints('g1', 1, 'ready', 'rpc', backend.port);
      const { reply, error } = await answer;
      expect(error).toBeUndefined();
      expect(reply).toMatchObject({ message: 'hello', revision: 'g1' });
    });

    it("passes the instance's gRPC status and message on (trailers)", async () => {
      const failing = await startGrpcEcho(0, { revision: 'g1', host: '127.0.0.1', failRate: 1, unhealthyAfterMs: 0 });
      backends.push(failing);
      await publishEndpoints('g1', 2, 'ready', 'rpc', failing.port);
      // Until the activator has the new endpoint set, calls still go to the previous instance.
      let error: grpc.ServiceError | undefined;
      await expect.poll(async () => (error = (await say('x')).error)?.code).toBe(grpc.status.UNAVAILABLE);
      expect(error?.details).toMatch(/revision g1 failed on purpose/);
      expect(failing.calls()).toBe(1);
    });

    it("answers DEADLINE_EXCEEDED when the client's deadline passes while held", async () => {
      await publishEndpoints('g1', 3, 'starting', 'rpc');
      const { error } = await say('late', 300);
      expect(error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    });
  });
});
