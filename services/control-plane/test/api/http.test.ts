import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createApiServer, type ApiServer } from '../../src/api/index.js';
import { eventually } from '../store/fixture.js';
import { adminToken, minimalGrpcService, startHarness, type Harness } from './harness.js';

/** Over a real listening port and a real nats-server, as `syctl` and scripts use the API. */
describe('the management API over HTTP', () => {
  let h: Harness;
  let url: string;
  let replica: ApiServer;
  let replicaUrl: string;

  beforeAll(async () => {
    h = await startHarness();
    url = (await h.api.listen({ port: 0, host: '127.0.0.1' })).url;
    // A second control-plane replica: its own connection, store and API on the same bucket.
    replica = await createApiServer({
      store: await h.fixture.openStore(),
      config: { API_PORT: 0, SWITCHYARD_ADMIN_TOKEN: adminToken, SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8' },
      logger: h.fixture.logger,
      registry: new Registry(),
      nodes: () => [],
    });
    replicaUrl = (await replica.listen({ port: 0, host: '127.0.0.1' })).url;
  });
  afterAll(async () => {
    await replica?.close();
    await h?.close();
  });

  const send = async (base: string, method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return {
      status: response.status,
      etag: response.headers.get('etag'),
      retryAfter: response.headers.get('retry-after'),
      body: text === '' ? undefined : JSON.parse(text),
    };
  };

  it('runs the tenant → token → service → traffic → delete flow, seen identically by both replicas', async () => {
    expect((await send(url, 'PUT', '/v1/tenants/acme', adminToken, { domains: ['acme.test'] })).status).toBe(201);
    const { token } = (await send(url, 'POST', '/v1/tenants/acme/tokens', adminToken)).body as { token: string };

    const created = await send(url, 'PUT', '/v1/tenants/acme/services/echo', token, minimalGrpcService);
    expect(created.status).toBe(201);
    // The replica knows the token and the service once its watcher has them.
    await eventually(async () => expect((await send(replicaUrl, 'GET', '/v1/tenants/acme/services/echo', token)).status).toBe(200));
    const fromReplica = await send(replicaUrl, 'GET', '/v1/tenants/acme/services/echo', token);
    const fromPrimary = await send(url, 'GET', '/v1/tenants/acme/services/echo', token);
    expect(fromReplica.body).toEqual(fromPrimary.body);
    expect(fromReplica.etag).toBe(created.etag);

    // Optimistic concurrency across replicas: the replica's write makes the primary's ETag stale.
    const shifted = await send(
      replicaUrl,
      'PUT',
      '/v1/tenants/acme/services/echo/traffic',
      token,
      {
        traffic: [
          { revision: 'blue', percent: 50 },
          { revision: 'green', percent: 50 },
        ],
      },
      { 'if-match': created.etag as string },
    );
    expect(shifted.status).toBe(200);
    const stale = await send(url, 'PUT', '/v1/tenants/acme/services/echo', token, minimalGrpcService, {
      'if-match': created.etag as string,
    });
    expect(stale.status).toBe(412);
    expect(stale.body.issues[0].field).toBe('header.if-match');

    await eventually(async () => expect((await send(url, 'GET', '/v1/tenants/acme/services/echo', token)).etag).toBe(shifted.etag));
    expect(
      (await send(url, 'DELETE', '/v1/tenants/acme/services/echo', token, undefined, { 'if-match': shifted.etag as string })).status,
    ).toBe(204);
    await eventually(async () => expect((await send(replicaUrl, 'GET', '/v1/tenants/acme/services/echo', token)).status).toBe(404));
  });

  it('answers requests the HTTP parser refuses in the documented error shape (431, 400)', async () => {
    const big = await fetch(`${url}/v1/tenants`, { headers: { authorization: `Bearer ${adminToken}`, 'x-padding': 'p'.repeat(20_000) } });
    expect(big.status).toBe(431);
    expect(await big.json()).toMatchObject({ status: 431, code: 'request_header_fields_too_large', issues: [{ field: '(headers)' }] });

    const garbage = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk.toString()));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      socket.write('NOT HTTP AT ALL\r\n\r\n');
    });
    expect(garbage).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, code: 'bad_request' });
  });

  it('answers 503 naming the store while NATS is down, and recovers after', async () => {
    await h.fixture.server.stop();
    const down = await send(url, 'PUT', '/v1/tenants/outage', adminToken, { domains: ['outage.test'] });
    expect(down.status).toBe(503);
    expect(down.retryAfter).not.toBeNull();
    expect(down.body).toMatchObject({ code: 'unavailable', issues: [{ field: '(store)' }] });
    // Reads keep working from the last known state.
    expect((await send(url, 'GET', '/v1/tenants', adminToken)).status).toBe(200);

    await h.fixture.server.restart();
    await eventually(
      async () => expect((await send(url, 'PUT', '/v1/tenants/outage', adminToken, { domains: ['outage.test'] })).status).toBe(201),
      20_000,
    );
  });
});
