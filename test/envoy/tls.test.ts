import { X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { makeCertificate, type TestCertificate } from './certs.js';
import { echoOf, httpsGet, startEnvoyWorld, type EnvoyWorld } from './support.js';
import { eventually } from '../support/stack.js';

const fingerprint = (certificate: TestCertificate) => new X509Certificate(certificate.certificateChain).fingerprint256;

/**
 * TLS as Envoy serves it from SDS: certificates made here with openssl and uploaded as a tenant
 * would, one filter chain per service chosen by SNI, a redirect from HTTP, and a certificate
 * rotated under an open keep-alive connection.
 */
describe('TLS through Envoy', () => {
  let world: EnvoyWorld;
  const backends: Record<string, TestBackend> = {};
  const certificates = {
    one: makeCertificate(['one.acme.test']),
    two: makeCertificate(['two.acme.test', '*.two.acme.test']),
    rotated: makeCertificate(['one.acme.test']),
    limited: makeCertificate(['limited.acme.test']),
  };
  const https = (domain: string, path: string, ca: TestCertificate, agent?: Agent, host?: string) =>
    httpsGet(world.stack.envoyHttpsPort, domain, path, ca.certificateChain, agent, host);
  const putOne = async (tls: TestCertificate) => {
    const path = '/v1/tenants/acme/services/one';
    const current = await world.api.call('GET', path);
    const ifMatch: Record<string, string> = current.etag === null ? {} : { 'if-match': current.etag };
    const spec = {
      domains: ['one.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backends.one!.endpoint] }],
      tls: { ...tls, redirectHttp: true },
    };
    await world.api.ok('PUT', path, spec, ifMatch);
  };

  beforeAll(async () => {
    for (const name of ['one', 'two', 'plain', 'limited']) backends[name] = await TestBackend.start(name);
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await putOne(certificates.one);
    await world.api.ok('PUT', '/v1/tenants/acme/services/two', {
      domains: ['two.acme.test', '*.two.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backends.two!.endpoint] }],
      tls: certificates.two,
    });
    await world.api.ok('PUT', '/v1/tenants/acme/services/plain', {
      domains: ['plain.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backends.plain!.endpoint] }],
    });
    await world.api.ok('PUT', '/v1/tenants/acme/services/limited', {
      domains: ['limited.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backends.limited!.endpoint] }],
      tls: certificates.limited,
      rateLimit: { requestsPerSecond: 1, burst: 4 },
    });
    await world.until('two.acme.test', '/', (a) => a.status === 200);
    await world.until('one.acme.test', '/', (a) => a.status === 301);
    await world.until('plain.acme.test', '/', (a) => a.status === 200);
    await eventually(async () => expect((await https('limited.acme.test', '/', certificates.limited)).status).toBe(200));
  });

  afterAll(async () => {
    await world?.stop();
    await Promise.all(Object.values(backends).map((b) => b.stop()));
  });

  it('serves each domain its own certificate, chosen by SNI, and routes it to its own service', async () => {
    const one = await https('one.acme.test', '/a', certificates.one);
    expect(one.peerCertificate).toBe(fingerprint(certificates.one));
    expect(echoOf(one)).toMatchObject({ backend: 'one', path: '/a' });
    expect(echoOf(one).headers['x-forwarded-proto']).toBe('https');
    expect(echoOf(one).headers['x-forwarded-port']).toBe(String(world.stack.envoyHttpsPort));
    for (const domain of ['two.acme.test', 'x.two.acme.test']) {
      const two = await https(domain, '/b', certificates.two);
      expect(two.peerCertificate).toBe(fingerprint(certificates.two));
      expect(echoOf(two)).toMatchObject({ backend: 'two', path: '/b' });
    }
    // One domain's certificate is never offered for another: the client refuses it.
    await expect(https('one.acme.test', '/', certificates.two)).rejects.toThrow(/self.signed|certificate/i);
    // No filter chain for an unknown name: the handshake fails.
    await expect(https('nobody.acme.test', '/', certificates.one)).rejects.toThrow();
  });

  it('redirects HTTP to HTTPS for the service that asks, and serves the other over HTTP too', async () => {
    const redirect = await world.http('one.acme.test', '/path?q=1');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe(`https://one.acme.test:${world.stack.envoyHttpsPort}/path?q=1`);
    const plain = await world.http('two.acme.test', '/path');
    expect(plain.status).toBe(200);
    expect(echoOf(plain)).toMatchObject({ backend: 'two' });
    expect(echoOf(plain).headers['x-forwarded-proto']).toBe('http');
  });

  it('serves a service without TLS over HTTP only: a request for it on an HTTPS connection to another name gets 404', async () => {
    const fronted = await https('two.acme.test', '/', certificates.two, undefined, 'plain.acme.test');
    expect(fronted.status).toBe(404);
    expect((await https('two.acme.test', '/', certificates.two)).status).toBe(200);
  });

  it('gives a service served over both HTTP and HTTPS one rate-limit bucket, not one per listener', async () => {
    // The readiness checks above took tokens; wait for a full bucket (4 tokens at 1/s).
    await new Promise((resolve) => setTimeout(resolve, 4100));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await world.http('limited.acme.test', '/')).status);
      statuses.push((await https('limited.acme.test', '/', certificates.limited)).status);
    }
    const allowed = statuses.filter((status) => status === 200).length;
    // One bucket of 4, plus at most one refill while the 12 requests run; two buckets would let 8 through.
    expect(allowed, statuses.join(' ')).toBeGreaterThanOrEqual(4);
    expect(allowed, statuses.join(' ')).toBeLessThanOrEqual(5);
    expect(statuses.filter((status) => status === 429).length).toBe(12 - allowed);
  });

  it('rotates a certificate without dropping an open keep-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await https('one.acme.test', '/before', certificates.one, agent);
      expect(before.peerCertificate).toBe(fingerprint(certificates.one));
      const held = await heldTls(world);

      const started = performance.now();
      await putOne(certificates.rotated);
      // New connections get the new certificate (trusted on its own)…
      const after = await eventually(async () => {
        const answer = await https('one.acme.test', '/after', certificates.rotated);
        if (answer.peerCertificate !== fingerprint(certificates.rotated)) throw new Error('still the old certificate');
        return answer;
      }, 10_000);
      console.log(`certificate rotated: new connections got it ${(performance.now() - started).toFixed(0)} ms after the PUT`);
      expect(echoOf(after)).toMatchObject({ backend: 'one' });

      // …while the connection opened before keeps serving, on the same socket and handshake.
      const kept = await https('one.acme.test', '/kept', certificates.one, agent);
      expect(kept.status).toBe(200);
      expect(kept.localPort).toBe(before.localPort);
      expect(kept.peerCertificate).toBe(fingerprint(certificates.one));
      expect(kept.headers.connection).not.toBe('close');
      // Only the secret changed: the HTTPS listener was not modified, so nothing was drained.
      const now = await heldTls(world);
      expect(now.secretUpdated).not.toBe(held.secretUpdated);
      expect(now.listener).toEqual(held.listener);
    } finally {
      agent.destroy();
    }
  });
});

/** When Envoy last took the HTTPS listener (and whether it drains one) and service one's secret, from /config_dump. */
async function heldTls(world: EnvoyWorld): Promise<{ listener: unknown; secretUpdated: string }> {
  const dump = (await world.envoy.configDump()).configs as Record<string, any>[];
  const section = (suffix: string) => dump.find((c) => (c['@type'] as string).endsWith(suffix))!;
  const listener = section('ListenersConfigDump').dynamic_listeners.find((l: any) => l.name === 'https');
  const secret = section('SecretsConfigDump').dynamic_active_secrets.find((s: any) => s.name === 'tls_acme_one');
  return {
    listener: { updated: listener.active_state.last_updated, draining: listener.draining_state ?? null },
    secretUpdated: secret.last_updated,
  };
}
