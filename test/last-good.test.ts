import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { buckets, connectNats, createLogger, createObservability, openBucket, type NatsConnection } from '@switchyard/shared';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, eventually, startStack, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

/**
 * Defence in depth: a service record that the API would refuse but that reached the store
 * anyway (an older version, a hand edit) never takes the service out of the data plane; the
 * proxies keep its last good translation and GET shows why.
 */
describe('a stored service that fails translation', () => {
  let nats: NatsServer;
  let stack: Stack;
  let nc: NatsConnection;
  let client: EchoClient;
  let backend: Awaited<ReturnType<typeof startGrpcEcho>>;
  const api = () => new Api(stack.apiUrl);
  const spec = () => ({
    domains: ['keep.acme.test'],
    protocol: 'grpc',
    revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: backend.port }] }],
  });

  beforeAll(async () => {
    nats = await NatsServer.start();
    backend = await startGrpcEcho(0, { revision: 'v1', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    stack = await startStack(nats, [controlPlane]);
    nc = await connectNats({
      servers: nats.url,
      name: 'writer',
      logger: createLogger('test', 'silent'),
      observability: createObservability('t'),
    });
    await api().ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api().ok('PUT', '/v1/tenants/acme/services/keep', spec());
    client = xdsEchoClient('keep.acme.test', stack.grpcPort, 'last-good-test');
  });
  afterAll(async () => {
    client?.close();
    await nc?.close();
    await stack?.stop();
    await backend?.close();
    await nats?.dispose();
  });

  it('keeps serving the last good translation and shows the error', async () => {
    expect((await eventually(() => client.say())).revision).toBe('v1');
    const stored = await api().ok('GET', '/v1/tenants/acme/services/keep');
    // A lookahead passes the schema but not RE2: only a writer bypassing the API can store it.
    const kv = await openBucket(nc, buckets.config);
    const record = JSON.parse((await kv.get('services.acme.keep'))!.string()) as { spec: { routes: { match: Record<string, unknown> }[] } };
    record.spec.routes = [{ match: { regex: '/(?=a)b', headers: [], queryParams: [] } }];
    await kv.put('services.acme.keep', JSON.stringify(record));

    const shown = await eventually(async () => {
      const body = await api().ok('GET', '/v1/tenants/acme/services/keep');
      return body.revision > stored.revision && body.errors.length > 0 && body;
    });
    expect(shown.errors).toEqual([{ source: 'translation', field: 'spec.routes[0].match.regex', message: expect.stringContaining('RE2') }]);
    // The data plane still routes the service as before.
    for (let i = 0; i < 5; i++) expect((await client.say()).revision).toBe('v1');
  });
});
