import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, eventually, startStack, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

/**
 * Issue 2: NATS going away never stops xDS. The control plane keeps serving its last config to
 * connected and newly connecting clients, says NATS is down in /healthz and the gauge, stays
 * ready, and catches up by itself when NATS returns.
 */
describe('a NATS outage under a running control plane', () => {
  let nats: NatsServer;
  let stack: Stack;
  let api: Api;
  const backends: Awaited<ReturnType<typeof startGrpcEcho>>[] = [];
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    for (const revision of ['one', 'two'])
      backends.push(await startGrpcEcho(0, { revision, host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 }));
    stack = await startStack(nats, [controlPlane]);
    api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      revisions: [
        { name: 'one', endpoints: [{ address: '127.0.0.1', port: backends[0]!.port }] },
        { name: 'two', endpoints: [{ address: '127.0.0.1', port: backends[1]!.port }] },
      ],
      traffic: [
        { revision: 'one', percent: 100 },
        { revision: 'two', percent: 0 },
      ],
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await nats?.dispose();
  });

  it('keeps serving xDS while NATS is down and catches up when it returns', async () => {
    const before = xdsEchoClient('echo.acme.test', stack.grpcPort, 'before-outage');
    clients.push(before);
    expect((await before.say()).revision).toBe('one');

    await nats.kill();
    await eventually(async () => {
      const health = (await (await fetch(`${stack.adminUrl}/healthz`)).json()) as { nats: { connected: boolean } };
      return health.nats.connected === false;
    });
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^switchyard_nats_connected\{[^}]*\} 0$/m);
    expect((await fetch(`${stack.adminUrl}/readyz`)).status).toBe(200);

    // A client that connects during the outage still gets the whole config.
    const during = xdsEchoClient('echo.acme.test', stack.grpcPort, 'during-outage');
    clients.push(during);
    expect((await during.say()).revision).toBe('one');
    expect((await before.say()).revision).toBe('one');
    // Writes cannot reach the store: the API says so instead of hanging.
    const refused = await api.call('PUT', '/v1/tenants/acme/services/echo/traffic', {
      traffic: [
        { revision: 'one', percent: 0 },
        { revision: 'two', percent: 100 },
      ],
    });
    expect(refused.status).toBe(503);

    await nats.restart();
    await eventually(async () => {
      const health = (await (await fetch(`${stack.adminUrl}/healthz`)).json()) as { nats: { connected: boolean } };
      return health.nats.connected;
    });
    // Caught up without a restart: a change made now reaches the clients.
    await eventually(
      async () =>
        (
          await api.call('PUT', '/v1/tenants/acme/services/echo/traffic', {
            traffic: [
              { revision: 'one', percent: 0 },
              { revision: 'two', percent: 100 },
            ],
          })
        ).status === 200,
    );
    await eventually(async () => (await during.say()).revision === 'two');
    await eventually(async () => (await before.say()).revision === 'two');
  });
});
