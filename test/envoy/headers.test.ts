import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, type EnvoyWorld } from './support.js';

/**
 * What a tenant's instance receives and what a client gets back through a real Envoy: the
 * router owns the forwarding and x-envoy-* headers whatever a client sends, and the tenant's own
 * header rules apply to the rest (the backend echoes the request headers it received).
 */
describe('headers through Envoy', () => {
  let world: EnvoyWorld;
  let backend: TestBackend;

  beforeAll(async () => {
    backend = await TestBackend.start('web');
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/plain', {
      domains: ['plain.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
    });
    await world.api.ok('PUT', '/v1/tenants/acme/services/ruled', {
      domains: ['ruled.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
      headers: {
        request: { add: [{ name: 'X-Tenant', value: 'acme' }], remove: ['Cookie2'] },
        response: { add: [{ name: 'Strict-Transport-Security', value: 'max-age=31536000' }], remove: ['Server', 'X-Backend'] },
      },
    });
    await world.until('ruled.acme.test', '/', (a) => a.status === 200);
    await world.until('plain.acme.test', '/', (a) => a.status === 200);
  });

  afterAll(async () => {
    await world?.stop();
    await backend?.stop();
  });

  it('overwrites the forwarding headers a client sends', async () => {
    const answer = await world.http('plain.acme.test', '/fwd', {
      headers: {
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-port': '1',
        'x-request-id': 'chosen-by-client',
      },
    });
    expect(answer.status).toBe(200);
    const received = echoOf(answer).headers;
    expect(received['x-forwarded-for']).toBe('127.0.0.1');
    expect(received['x-forwarded-proto']).toBe('http');
    expect(received['x-forwarded-host']).toBe('plain.acme.test');
    expect(received['x-forwarded-port']).toBe(String(world.stack.envoyHttpPort));
    expect(received['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers['x-request-id']).toBe(received['x-request-id']);
  });

  it('routes by the Host header whatever scope key a client sends, and never passes the key on', async () => {
    const answer = await world.http('plain.acme.test', '/scope', { headers: { 'x-switchyard-scope': 'ruled.acme.test' } });
    expect(answer.status).toBe(200);
    const received = echoOf(answer).headers;
    expect(received['x-tenant']).toBeUndefined(); // not routed to `ruled`, whose rules would add it
    expect(received['x-switchyard-scope']).toBeUndefined();
    expect((await world.http('nobody.acme.test', '/', { headers: { 'x-switchyard-scope': 'plain.acme.test' } })).status).toBe(404);
  });

  it('strips every x-envoy-* header a client sends', async () => {
    const spoofed = {
      'x-envoy-internal': 'true',
      'x-envoy-external-address': '10.0.0.1',
      'x-envoy-retry-on': '5xx',
      'x-envoy-max-retries': '9',
      'x-envoy-upstream-rq-timeout-ms': '1',
      'x-envoy-original-path': '/admin',
      'x-envoy-decorator-operation': 'spoofed',
      'x-envoy-tenant': 'globex',
    };
    const answer = await world.http('plain.acme.test', '/delay/50', { headers: spoofed });
    expect(answer.status).toBe(200); // the client's 1 ms timeout was ignored
    const received = echoOf(answer).headers;
    expect(Object.keys(received).filter((name) => name.startsWith('x-envoy-'))).toEqual([]);
    for (const name of Object.keys(answer.headers)) expect(name.startsWith('x-envoy-'), name).toBe(false);
  });

  it("applies the tenant's request header rules", async () => {
    const answer = await world.http('ruled.acme.test', '/rules', {
      headers: { 'x-tenant': 'globex', cookie2: 'secret', 'x-kept': 'yes' },
    });
    const received = echoOf(answer).headers;
    expect(received['x-tenant']).toBe('acme'); // overwritten, not appended
    expect(received.cookie2).toBeUndefined();
    expect(received['x-kept']).toBe('yes');
    // The other service keeps what the client sent.
    const plain = echoOf(await world.http('plain.acme.test', '/rules', { headers: { 'x-tenant': 'globex', cookie2: 'secret' } })).headers;
    expect(plain).toMatchObject({ 'x-tenant': 'globex', cookie2: 'secret' });
  });

  it("applies the tenant's response header rules, the Server header included", async () => {
    const ruled = await world.http('ruled.acme.test', '/');
    expect(ruled.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(ruled.headers['x-backend']).toBeUndefined();
    expect(ruled.headers.server).toBeUndefined();
    // Without rules, the instance's headers pass, and Envoy does not announce itself.
    const plain = await world.http('plain.acme.test', '/');
    expect(plain.headers['x-backend']).toBe('web');
    expect(plain.headers.server).toBeUndefined();
    expect(plain.headers['strict-transport-security']).toBeUndefined();
  });
});
