import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, startHarness, type Harness } from './harness.js';

/** What a tenant must not be able to store, and that a stored TLS key never comes back. */

const pem = (name: string) => readFileSync(new URL(`../validation/certs/${name}`, import.meta.url), 'utf8');
const tls = (name: string, keyOf = name) => ({ certificateChain: pem(`${name}.crt`), privateKey: pem(`${keyOf}.key`) });

let h: Harness;
let token: string;
beforeAll(async () => {
  h = await startHarness();
  expect((await h.call('PUT', '/v1/tenants/trust', { token: adminToken, body: { domains: ['trust.test'] } })).status).toBe(201);
  token = (await h.call('POST', '/v1/tenants/trust/tokens', { token: adminToken })).body.token as string;
});
afterAll(async () => {
  await h?.close();
});

const base = { domains: ['secure.trust.test'], revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.1', port: 8080 }] }] };

describe('TLS secrets are write-only', () => {
  it('answers PUT and GET with the certificate described and never the private key', async () => {
    const key = tls('rsa-2048').privateKey;
    const put = await h.call('PUT', '/v1/tenants/trust/services/secure', { token, body: { ...base, tls: tls('rsa-2048') } });
    expect(put.status).toBe(201);
    const get = await h.call('GET', '/v1/tenants/trust/services/secure', { token });
    const admin = await h.call('GET', '/v1/tenants/trust/services/secure', { token: adminToken });
    for (const answer of [put, get, admin]) {
      const text = JSON.stringify(answer.body);
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(key.split('\n')[1]);
      expect(answer.body.spec.tls).toEqual({
        redirectHttp: false,
        certificate: {
          subject: 'CN=secure.trust.test',
          subjectAltNames: ['DNS:secure.trust.test', 'DNS:www.secure.trust.test'],
          notBefore: '2025-12-31T00:00:00.000Z',
          notAfter: expect.stringMatching(/^2125-/),
          fingerprintSha256: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
        },
      });
    }
    // The key is stored for the translator: write-only, not discarded.
    expect(h.store.view.service('trust', 'secure')?.record.spec.tls?.privateKey).toBe(key);
  });
});

describe('everything the translator would refuse is refused at the API', () => {
  const route = (match: Record<string, unknown>) => ({ routes: [{ match }] });
  it.each([
    { label: 'a lookahead regex', body: route({ regex: '/(?=a)b' }), field: 'routes[0].match.regex' },
    { label: 'a backreference', body: route({ regex: '/(a)\\1' }), field: 'routes[0].match.regex' },
    { label: 'a {1000} repetition', body: route({ regex: '/a{1000}' }), field: 'routes[0].match.regex' },
    {
      label: 'a lookahead in a header match',
      body: route({ prefix: '/', headers: [{ name: 'x-a', regex: '(?!a)' }] }),
      field: 'routes[0].match.headers[0].regex',
    },
    {
      label: 'a zero health-check interval and timeout',
      body: { healthCheck: { interval: '0s', timeout: '0s' } },
      field: 'healthCheck.interval',
      also: ['healthCheck.timeout'],
    },
    { label: 'a zero outlier interval', body: { outlierDetection: { interval: 0 } }, field: 'outlierDetection.interval' },
    { label: 'a request timeout over an hour', body: { timeouts: { request: '61m' } }, field: 'timeouts.request' },
    { label: 'a route timeout over an hour', body: { routes: [{ timeout: '2h' }] }, field: 'routes[0].timeout' },
    { label: 'a duration beyond any clock', body: { timeouts: { request: '99999999999999999999h' } }, field: 'timeouts.request' },
    {
      label: 'NUL in a header match value',
      body: route({ prefix: '/', headers: [{ name: 'x-a', exact: 'a\u0000b' }] }),
      field: 'routes[0].match.headers[0].exact',
    },
    {
      label: 'CR in a query parameter name',
      body: route({ prefix: '/', queryParams: [{ name: 'a\rb', present: true }] }),
      field: 'routes[0].match.queryParams[0].name',
    },
    { label: 'LF in a path prefix', body: route({ prefix: '/a\nb' }), field: 'routes[0].match.prefix' },
    { label: 'a 1024-bit RSA key', body: { tls: tls('rsa-1024') }, field: 'tls.privateKey' },
    { label: 'an EC key on secp256k1', body: { tls: tls('ec-secp256k1') }, field: 'tls.privateKey' },
    { label: 'an expired certificate', body: { tls: tls('expired') }, field: 'tls.certificateChain' },
    { label: "another certificate's key", body: { tls: tls('rsa-2048', 'ec-p384') }, field: 'tls.privateKey' },
    { label: 'a domain label over 63 characters', body: { domains: [`${'a'.repeat(64)}.trust.test`] }, field: 'domains[0]' },
  ])('400 for $label, naming $field', async ({ label, body, field, also = [] }) => {
    // A name per case: on code that wrongly accepts one body, the next cases still test their own.
    const name = `refused-${label
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 40)
      .replace(/-$/, '')}`;
    const answer = await h.call('PUT', `/v1/tenants/trust/services/${name}`, {
      token,
      body: { ...base, domains: [`${name}.trust.test`], ...body },
    });
    expect({ status: answer.status, fields: answer.body.issues.map((i: { field: string }) => i.field) }).toEqual({
      status: 400,
      fields: [field, ...also],
    });
    expect(h.store.view.service('trust', name)).toBeUndefined();
  });

  it('400 for granting a public suffix', async () => {
    const answer = await h.call('PUT', '/v1/tenants/suffix', { token: adminToken, body: { domains: ['com'] } });
    expect({ status: answer.status, issues: answer.body.issues }).toEqual({
      status: 400,
      issues: [{ field: 'domains[0]', message: 'is a public suffix: grant a domain registered under it' }],
    });
  });
});

describe('poisoned records', () => {
  // What "99999999999999999999h" became in a record before durations were bounded: no reader accepts it.
  const poisoned = (domain: string) => ({
    schemaVersion: 1,
    tenant: 'trust',
    name: 'poison',
    spec: { ...base, domains: [domain], timeouts: { request: 3.6e26, idle: 300_000 } },
    updatedAt: 1,
  });
  const poison = async (service: string, domain: string) =>
    h.store.kv.put(`services.trust.${service}`, JSON.stringify({ ...poisoned(domain), name: service }));

  it('shows a stored record that fails the schema as invalid, and lets it be replaced', async () => {
    const revision = await poison('poison', 'poison.trust.test');
    await h.store.view.waitFor(revision, 5000);
    const get = await h.call('GET', '/v1/tenants/trust/services/poison', { token });
    expect(get.status).toBe(200);
    expect(get.headers.etag).toBe(`"${revision}"`);
    expect(get.body).toMatchObject({ revision, spec: null, errors: [{ source: 'record', field: '(record)' }] });
    expect(get.body.errors[0].message).toContain('spec.timeouts.request');

    const body = { ...base, domains: ['poison.trust.test'] };
    // A stale precondition is refused; PUT replaces the invalid record like any other (docs/api.md).
    const stale = { 'if-match': `"${revision - 1}"` };
    expect((await h.call('PUT', '/v1/tenants/trust/services/poison', { token, body, headers: stale })).status).toBe(412);
    const replaced = await h.call('PUT', '/v1/tenants/trust/services/poison', { token, body, headers: { 'if-match': `"${revision}"` } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.errors).toEqual([]);
    expect(replaced.body.spec.domains).toEqual(['poison.trust.test']);
  });

  it('keeps serving the last valid record, shows the newer invalid one, and deletes it', async () => {
    const last = h.store.view.service('trust', 'poison');
    const revision = await poison('poison', 'poison.trust.test');
    await h.store.view.waitFor(revision, 5000);
    expect(h.store.view.service('trust', 'poison')).toBe(last);
    const get = await h.call('GET', '/v1/tenants/trust/services/poison', { token });
    expect(get.body).toMatchObject({ revision, spec: { domains: ['poison.trust.test'] }, errors: [{ source: 'record' }] });
    const traffic = await h.call('PUT', '/v1/tenants/trust/services/poison/traffic', {
      token,
      body: { traffic: [{ revision: 'v1', percent: 100 }] },
    });
    expect(traffic.status).toBe(409);
    expect((await h.call('DELETE', '/v1/tenants/trust/services/poison', { token })).status).toBe(204);
    expect((await h.call('GET', '/v1/tenants/trust/services/poison', { token })).status).toBe(404);
  });

  it('deletes everything under a tenant with the tenant, poisoned records included', async () => {
    expect((await h.call('PUT', '/v1/tenants/doomed', { token: adminToken, body: { domains: ['doomed.test'] } })).status).toBe(201);
    const doomedToken = (await h.call('POST', '/v1/tenants/doomed/tokens', { token: adminToken })).body.token as string;
    const body = { ...base, domains: ['web.doomed.test'] };
    expect((await h.call('PUT', '/v1/tenants/doomed/services/web', { token: doomedToken, body })).status).toBe(201);
    await h.store.kv.put('services.doomed.bad', JSON.stringify({ ...poisoned('bad.doomed.test'), tenant: 'doomed', name: 'bad' }));

    expect((await h.call('DELETE', '/v1/tenants/doomed', { token: adminToken })).status).toBe(204);
    const left: string[] = [];
    for (const filter of ['services.doomed.>', 'deployments.doomed.>', 'tenants.doomed']) {
      for await (const key of await h.store.kv.keys(filter)) left.push(key);
    }
    expect(left).toEqual([]);
    expect((await h.call('GET', '/v1/whoami', { token: doomedToken })).status).toBe(401);

    expect((await h.call('PUT', '/v1/tenants/doomed', { token: adminToken, body: { domains: ['doomed.test'] } })).status).toBe(201);
    const again = await h.call('PUT', '/v1/tenants/doomed/services/bad', {
      token: adminToken,
      body: { ...base, domains: ['bad.doomed.test'] },
    });
    expect(again.status).toBe(201);
  });
});
