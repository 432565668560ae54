import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, eventually, startStack, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

type Backend = Awaited<ReturnType<typeof startGrpcEcho>>;

/**
 * Issue 3's end-to-end routing: real gRPC backends, the control plane on a real nats-server,
 * and `@grpc/grpc-js-xds` clients as the data plane.
 */
describe('routing through the control plane to proxyless gRPC clients', () => {
  let nats: NatsServer;
  let stack: Stack;
  let api: Api;
  const backends: Record<string, Backend> = {};
  const clients: EchoClient[] = [];

  const client = (domain: string, node: string) => {
    const c = xdsEchoClient(domain, stack.grpcPort, node);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    for (const [name, failRate] of [
      ['blue', 0],
      ['green', 0],
      ['globex', 0],
      ['flaky', 1],
      ['steady', 0],
    ] as const) {
      backends[name] = await startGrpcEcho(0, { revision: name, host: '127.0.0.1', failRate, unhealthyAfterMs: 0 });
    }
    stack = await startStack(nats, [controlPlane]);
    api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/globex', { domains: ['globex.test'] });
    // The minimal body, with the ports of real backends.
    await api.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      revisions: [
        { name: 'blue', endpoints: [{ address: '127.0.0.1', port: backends.blue!.port }] },
        { name: 'green', endpoints: [{ address: '127.0.0.1', port: backends.green!.port }] },
      ],
      traffic: [
        { revision: 'blue', percent: 80 },
        { revision: 'green', percent: 20 },
      ],
    });
    await api.ok('PUT', '/v1/tenants/globex/services/echo', {
      domains: ['echo.globex.test'],
      protocol: 'grpc',
      revisions: [{ name: 'main', endpoints: [{ address: '127.0.0.1', port: backends.globex!.port }] }],
    });
    await api.ok('PUT', '/v1/tenants/acme/services/retry', {
      domains: ['retry.acme.test'],
      protocol: 'grpc',
      revisions: [
        {
          name: 'main',
          endpoints: [
            { address: '127.0.0.1', port: backends.flaky!.port },
            { address: '127.0.0.1', port: backends.steady!.port },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
    await nats?.dispose();
  });

  it('routes two tenants by domain', async () => {
    const acme = client('echo.acme.test', 'acme-node');
    const globex = client('echo.globex.test', 'globex-node');
    const acmeRevisions = new Set<string>();
    for (let i = 0; i < 50; i++) acmeRevisions.add((await acme.say()).revision);
    expect([...acmeRevisions].sort()).toEqual(['blue', 'green']);
    for (let i = 0; i < 20; i++) expect((await globex.say()).revision).toBe('globex');
  });

  it('splits 80/20 within ±5 % over 2,000 calls', async () => {
    const acme = client('echo.acme.test', 'split-node');
    await acme.say();
    const counts: Record<string, number> = { blue: 0, green: 0 };
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(Array.from({ length: 100 }, () => acme.say()));
      for (const reply of replies) counts[reply.revision] = (counts[reply.revision] ?? 0) + 1;
    }
    expect(counts.blue! + counts.green!).toBe(2000);
    expect(Math.abs(counts.green! / 2000 - 0.2)).toBeLessThanOrEqual(0.05);
  });

  it('retries a failing instance on the other one', async () => {
    const retry = client('retry.acme.test', 'retry-node');
    const revisions = new Set<string>();
    for (let i = 0; i < 50; i++) revisions.add((await retry.say()).revision);
    // The flaky instance fails every call with UNAVAILABLE; every call still succeeds, on the steady one.
    expect(revisions).toEqual(new Set(['steady']));
    expect(backends.flaky!.calls()).toBeGreaterThan(10);
  });

  it('applies a traffic change to a live client within a second', async () => {
    const live = client('echo.acme.test', 'live-node');
    await live.say();
    const started = Date.now();
    await api.ok('PUT', '/v1/tenants/acme/services/echo/traffic', {
      traffic: [
        { revision: 'blue', percent: 0 },
        { revision: 'green', percent: 100 },
      ],
    });
    await eventually(
      async () => {
        const replies = await Promise.all(Array.from({ length: 10 }, () => live.say()));
        return replies.every((r) => r.revision === 'green');
      },
      5000,
      10,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('keeps clients routing through a control-plane restart, with the same config after it', async () => {
    const steady = client('echo.globex.test', 'restart-node');
    await steady.say();
    const before = await api.ok('GET', '/v1/tenants/globex/services/echo');
    const grpcPort = stack.grpcPort;
    await stack.stop();
    // No control plane: the client keeps its last config and keeps routing.
    for (let i = 0; i < 10; i++) expect((await steady.say()).revision).toBe('globex');
    stack = await startStack(nats, [controlPlane], { grpcPort });
    api = new Api(stack.apiUrl);
    const after = await api.ok('GET', '/v1/tenants/globex/services/echo');
    expect(after.spec).toEqual(before.spec);
    expect(after.status.xds.version).toBe(before.status.xds.version);
    await eventually(async () => {
      const { nodes } = await api.ok('GET', '/v1/nodes');
      return nodes.some((n: { id: string }) => n.id === 'restart-node');
    });
    // The reconnected client holds exactly what the restarted control plane serves.
    await eventually(async () => {
      const status = (await api.ok('GET', '/v1/tenants/globex/services/echo')).status;
      return status.xds.nodes.find((n: { node: string }) => n.node === 'restart-node')?.state === 'ACKED';
    });
    for (let i = 0; i < 10; i++) expect((await steady.say()).revision).toBe('globex');
  });
});
