import * as grpc from '@grpc/grpc-js';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { echoClientConstructor, startGrpcEcho, type EchoReply } from '@switchyard/demo';
import { TestBackend } from './backend.js';
import { startEnvoyWorld, virtualHostInDump, type Dump, type EnvoyWorld } from './support.js';
import { eventually } from '../support/stack.js';

type GrpcEcho = Awaited<ReturnType<typeof startGrpcEcho>>;
type EchoStub = grpc.Client & {
  Say(req: { message: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): void;
};

/**
 * Long-lived and non-HTTP/1 traffic through a real Envoy: gRPC (HTTP/2 to the instance), a
 * WebSocket upgrade, a server-sent-event stream delivered as it is written (App Runner roadmap
 * #13, #23, #77), and a route whose timeout is 30 minutes (#104).
 */
describe('gRPC, WebSocket, SSE and long routes through Envoy', () => {
  let world: EnvoyWorld;
  let backend: TestBackend;
  let grpcEcho: GrpcEcho;

  beforeAll(async () => {
    backend = await TestBackend.start('web');
    grpcEcho = await startGrpcEcho(0, { revision: 'g1', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
      routes: [{ match: { prefix: '/long/' }, timeout: '30m' }, { match: { prefix: '/' } }],
    });
    await world.api.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      revisions: [{ name: 'g1', endpoints: [{ address: '127.0.0.1', port: grpcEcho.port }] }],
    });
    await world.until('web.acme.test', '/', (a) => a.status === 200);
  });

  afterAll(async () => {
    await world?.stop();
    await backend?.stop();
    await grpcEcho?.close();
  });

  it('carries gRPC calls from a plain grpc-js client to an HTTP/2 instance', async () => {
    const Echo = echoClientConstructor();
    const client = new Echo(`127.0.0.1:${world.stack.envoyHttpPort}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'echo.acme.test',
    }) as unknown as EchoStub;
    const say = (message: string) =>
      new Promise<EchoReply>((resolve, reject) =>
        client.Say({ message }, { deadline: Date.now() + 5000 }, (err, reply) => (err || !reply ? reject(err) : resolve(reply))),
      );
    try {
      // The first calls may race the config reaching Envoy (no virtual host yet: UNIMPLEMENTED).
      const first = await eventually(() => say('hello'), 10_000, 100);
      expect(first).toMatchObject({ message: 'hello', revision: 'g1', instance: `127.0.0.1:${grpcEcho.port}` });
      const calls = grpcEcho.calls();
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => say(`m${i}`)));
      expect(replies.map((r) => r.message)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      expect(grpcEcho.calls() - calls).toBe(20);
    } finally {
      client.close();
    }
  });

  it('upgrades a WebSocket and relays messages both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${world.stack.envoyHttpPort}/chat`, { headers: { host: 'web.acme.test' } });
    try {
      const received: string[] = [];
      const all = new Promise<void>((resolve, reject) => {
        ws.on('message', (data: Buffer) => {
          received.push(data.toString());
          if (received.length === 3) resolve();
        });
        ws.on('error', reject);
        ws.on('close', (code) => reject(new Error(`closed early (${code})`)));
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
        ws.once('error', reject);
      });
      for (const message of ['one', 'two', 'three']) ws.send(message);
      await all;
      expect(received).toEqual(['web:one', 'web:two', 'web:three']);
    } finally {
      ws.terminate();
    }
  });

  it('delivers a server-sent-event stream event by event, not buffered', async () => {
    const events = await new Promise<{ at: number; data: string }[]>((resolve, reject) => {
      const started = performance.now();
      const seen: { at: number; data: string }[] = [];
      const req = request(
        {
          host: '127.0.0.1',
          port: world.stack.envoyHttpPort,
          path: '/sse/5',
          headers: { host: 'web.acme.test', accept: 'text/event-stream' },
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toBe('text/event-stream');
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
              const data = /^data: (.*)$/m.exec(buffered.slice(0, end))?.[1] ?? '';
              seen.push({ at: performance.now() - started, data });
              buffered = buffered.slice(end + 2);
            }
          });
          res.on('end', () => resolve(seen));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(events.map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => `web event ${i}`));
    // The backend writes one event every 100 ms: each arrives as written, so they are spread out too.
    const gaps = events.slice(1).map((e, i) => e.at - events[i]!.at);
    console.log(`SSE through Envoy: events at ${events.map((e) => e.at.toFixed(0)).join(', ')} ms`);
    expect(events.at(-1)!.at - events[0]!.at).toBeGreaterThanOrEqual(300);
    expect(gaps.filter((gap) => gap >= 50).length).toBeGreaterThanOrEqual(3);
  });

  it('holds a 30-minute route timeout in its config (1800s), beside the default 120s', async () => {
    const web = virtualHostInDump((await world.envoy.configDump()) as Dump, 'acme_web');
    expect(web.routes.map((r: any) => [r.match.prefix, r.route.timeout])).toEqual([
      ['/long/', '1800s'],
      ['/', '120s'],
    ]);
    const answer = await world.http('web.acme.test', '/long/report');
    expect(answer.status).toBe(200);
  });
});
