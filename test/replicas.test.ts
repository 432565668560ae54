import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, startStack, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

/** Issue 3: two control-plane replicas on one KV serve identical config. */
describe('two control-plane replicas', () => {
  let nats: NatsServer;
  let first: Stack;
  let second: Stack;
  let backend: Awaited<ReturnType<typeof startGrpcEcho>>;
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    backend = await startGrpcEcho(0, { revision: 'main', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    first = await startStack(nats, [controlPlane]);
    second = await startStack(nats, [controlPlane]);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await second?.stop();
    await first?.stop();
    await backend?.close();
    await nats?.dispose();
  });

  it('serve the same config version, whichever replica took the write', async () => {
    const viaFirst = new Api(first.apiUrl);
    const viaSecond = new Api(second.apiUrl);
    await viaFirst.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await viaSecond.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      revisions: [{ name: 'main', endpoints: [{ address: '127.0.0.1', port: backend.port }] }],
    });
    const versions = async () => {
      const a = (await viaFirst.ok('GET', '/v1/tenants/acme/services/echo')).status.xds.version;
      const b = (await viaSecond.ok('GET', '/v1/tenants/acme/services/echo')).status.xds.version;
      return { a, b };
    };
    // Both replicas serve the service to their own clients…
    for (const stack of [first, second]) {
      const client = xdsEchoClient('echo.acme.test', stack.grpcPort, `node-${stack.grpcPort}`);
      clients.push(client);
      expect((await client.say()).revision).toBe('main');
    }
    // …and with it the very same config: versions are content hashes.
    const { a, b } = await versions();
    expect(a).toBe(b);
  });
});
