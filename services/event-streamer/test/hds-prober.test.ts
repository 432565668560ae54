import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthChecking } from '../src/health.js';
import { HdsProber } from '../src/testing/hds-prober.js';
import { record } from './fixtures.js';
import { collect, eventually, putService, startBus, startGrpc, startHealth, type Bus } from './harness.js';

/**
 * The prober is the stand-in for Envoy in end-to-end tests: it must run the assigned checks
 * against real targets and report what it sees. Real clock, short intervals.
 */
describe('HdsProber against real targets', () => {
  let bus: Bus;
  let grpc: Awaited<ReturnType<typeof startGrpc>>;
  let health: HealthChecking;
  let http: HttpServer;
  let tcp: TcpServer;
  let httpStatus = 200;
  const hosts: string[] = [];
  const probers: HdsProber[] = [];

  const listen = async <S extends HttpServer | TcpServer>(server: S) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    bus = await startBus();
    http = createHttpServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.statusCode = req.url === '/healthz' ? httpStatus : 404;
      res.end();
    });
    tcp = createTcpServer((socket) => socket.destroy());
    const httpPort = await listen(http);
    const tcpPort = await listen(tcp);
    const healthCheck = { interval: 150, timeout: 100, healthyThreshold: 1, unhealthyThreshold: 2, gracePeriod: 0 };
    await putService(
      bus.kv,
      record('live', 'web', {
        revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: httpPort }] }],
        healthCheck: { ...healthCheck, protocol: 'http', path: '/healthz' },
      }),
    );
    await putService(
      bus.kv,
      record('live', 'db', {
        revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: tcpPort }] }],
        healthCheck: { ...healthCheck, protocol: 'tcp' },
      }),
    );
    grpc = await startGrpc(() => undefined);
    health = await startHealth(bus, grpc.server, { reportIntervalMs: 200 });
    await health.loaded;
  });
  afterAll(async () => {
    for (const prober of probers) prober.close();
    await health?.stop();
    await grpc?.stop();
    http?.close();
    tcp?.close();
    await bus?.close();
  });

  it('checks real HTTP and TCP endpoints and turns failures into transitions', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.live.>');
    for (const id of ['p1', 'p2', 'p3']) probers.push(new HdsProber(grpc.address, { nodeId: id }));
    const state = (service: string) => transitions.items.filter((t) => t.service === service).at(-1)?.state;
    await eventually(() => state('web') === 'healthy' && state('db') === 'healthy', 10_000, 'both healthy');
    expect(hosts).toContain('web.live.example.com');

    httpStatus = 503;
    await eventually(() => state('web') === 'unhealthy', 10_000, 'web unhealthy after failing checks');
    expect(transitions.items.filter((t) => t.service === 'web').at(-1)?.reason).toMatch(/checkers report unhealthy/);

    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    await eventually(() => state('db') === 'unhealthy', 10_000, 'db unhealthy once nothing listens');

    httpStatus = 200;
    await eventually(() => state('web') === 'healthy', 10_000, 'web healthy again');
    transitions.stop();
  });
});
