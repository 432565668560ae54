import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { makeCertificate } from './certs.js';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';

/**
 * A TLS service switching its HTTP→HTTPS redirect on and off, alone on the stack (no other
 * service redirects), under continuous plain-HTTP requests through Envoy 1.40: every answer is
 * the service's or the redirect, never a 404 while Envoy takes the change.
 */
describe('the HTTPS redirect switched on and off through Envoy', () => {
  let world: EnvoyWorld;
  let backend: TestBackend;
  const certificate = makeCertificate(['toggled.acme.test']);
  const path = '/v1/tenants/acme/services/toggled';
  const put = async (redirectHttp: boolean) => {
    const current = await world.api.call('GET', path);
    const ifMatch: Record<string, string> = current.etag === null ? {} : { 'if-match': current.etag };
    const spec = {
      domains: ['toggled.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
      tls: { ...certificate, redirectHttp },
    };
    await world.api.ok('PUT', path, spec, ifMatch);
  };

  beforeAll(async () => {
    backend = await TestBackend.start('toggled');
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await put(false);
    await world.until('toggled.acme.test', '/', (a) => a.status === 200);
  });
  afterAll(async () => {
    await world?.stop();
    await backend?.stop();
  });

  it('answers every request with the service or the redirect, never 404', async () => {
    const statuses: Record<number, number> = {};
    let running = true;
    const load = (async () => {
      while (running) {
        const { status } = await world.http('toggled.acme.test', '/');
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    })();
    for (const redirectHttp of [true, false, true]) {
      await put(redirectHttp);
      await world.until('toggled.acme.test', '/', (a) => a.status === (redirectHttp ? 301 : 200));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    running = false;
    await load;
    expect(Object.keys(statuses).sort(), JSON.stringify(statuses)).toEqual(['200', '301']);
  });
});
