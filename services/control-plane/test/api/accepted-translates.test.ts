import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import { EndpointAllowlist } from '../../src/store/index.js';
import { defaultTranslateOptions, translate } from '../../src/translator/index.js';
import { encodeResource } from '../../src/xds/encoding.js';
import { adminToken, startHarness, type Harness } from './harness.js';

/**
 * The property behind "parsing is total" and "every check runs at the API": whatever body the
 * API accepts, the stored record goes through the translator into encoded Envoy resources
 * without an error. Bodies mix valid and hostile values, so both answers are exercised.
 */

const cidrs = '127.0.0.0/8, 10.0.0.0/8, fd00::/8';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { API_PORT: 0, SWITCHYARD_ADMIN_TOKEN: adminToken, SWITCHYARD_ENDPOINT_CIDRS: cidrs } });
  expect((await h.call('PUT', '/v1/tenants/prop', { token: adminToken, body: { domains: ['prop.test'] } })).status).toBe(201);
});
afterAll(async () => {
  await h?.close();
});

const pem = (name: string) => readFileSync(new URL(`../validation/certs/${name}`, import.meta.url), 'utf8');

/** Mostly a valid value, now and then a hostile one: every body is a handful of choices, so most must pass. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: hostile, weight: 1 });

const text = mostly(fc.stringMatching(/^[a-z0-9-]{0,8}$/), fc.string({ unit: 'binary', maxLength: 8 }));
const duration = mostly(
  fc.oneof(fc.integer({ min: 1, max: 60_000 }), fc.constantFrom('500ms', '2s', '1.5m', '1h')),
  fc.oneof(
    fc.nat({ max: 10_000_000_000 }),
    fc.tuple(fc.stringMatching(/^\d{1,22}(\.\d{1,3})?$/), fc.constantFrom('ms', 's', 'm', 'h')).map(([n, unit]) => `${n}${unit}`),
  ),
);
const regex = mostly(
  fc.constantFrom('/a+', '/[a-z]{2,5}/x', '/x.*y', '\\p{L}+', '/a{2,}', '[[:alpha:]]+', '/(a|b){3}'),
  fc.constantFrom('/(?=a)b', '/a{1000}', '(a)\\1', '(', '/((a{50}){50})'),
);
const headerName = mostly(fc.constantFrom('x-a', 'accept', 'x-tenant'), fc.constantFrom('x_b', 'x-envoy-x', 'host', ''));
const headerMatch = fc.oneof(
  fc.record({ name: headerName, exact: text }),
  fc.record({ name: headerName, prefix: text.filter((t) => t !== '') }),
  fc.record({ name: headerName, regex }),
  fc.record({ name: headerName, present: fc.constant(true) }),
  fc.record({ name: headerName, range: fc.record({ start: fc.integer({ min: -5, max: 5 }), end: fc.integer({ min: -5, max: 5 }) }) }),
);
const queryMatch = fc.oneof(
  fc.record({ name: text.filter((t) => t !== ''), exact: text }),
  fc.record({ name: fc.constant('q'), regex }),
  fc.record({ name: text.filter((t) => t !== ''), present: fc.constant(true) }),
);
const route = fc.record(
  {
    match: fc.oneof(
      fc.record({ prefix: text.map((t) => `/${t}`) }),
      fc.record({ path: text.map((t) => `/${t}`) }),
      fc.record({ regex, headers: fc.array(headerMatch, { maxLength: 2 }), queryParams: fc.array(queryMatch, { maxLength: 2 }) }),
    ),
    timeout: duration,
  },
  { requiredKeys: ['match'] },
);
const address = mostly(
  fc.constantFrom('10.0.0.1', '10.0.0.2', '127.0.0.1', 'fd00::1'),
  fc.constantFrom('169.254.169.254', 'fd00:ec2::254', '192.168.0.1', '::ffff:169.254.169.254'),
);
const port = mostly(fc.integer({ min: 1, max: 65_535 }), fc.constantFrom(0, 65_536, -1));
const revision = (name: string) =>
  fc.oneof(
    fc.record({ name: fc.constant(name), endpoints: fc.array(fc.record({ address, port }), { minLength: 1, maxLength: 3 }) }),
    fc.record({ name: fc.constant(name), command: fc.constant(['/bin/true']) }),
  );
const tls = mostly(fc.constantFrom('rsa-2048', 'ec-p384'), fc.constantFrom('rsa-1024', 'ec-secp256k1', 'expired')).map((name) => ({
  certificateChain: pem(`${name}.crt`),
  privateKey: pem(`${name}.key`),
}));
const domains = fc.uniqueArray(
  mostly(
    fc.constantFrom('a.prop.test', '*.w.prop.test', 'c.prop.test'),
    fc.constantFrom(`${'x'.repeat(64)}.prop.test`, 'b.other.test', 'Bad.prop.test'),
  ),
  { minLength: 1, maxLength: 2 },
);
const revisionsAndTraffic = fc.oneof(
  revision('v1').map((v1) => ({ revisions: [v1] })),
  fc.tuple(revision('v1'), revision('v2'), fc.integer({ min: 0, max: 100 })).map(([v1, v2, p]) => ({
    revisions: [v1, v2],
    traffic: [
      { revision: 'v1', percent: p },
      { revision: 'v2', percent: 100 - p },
    ],
  })),
);
const body = fc
  .tuple(
    fc.record(
      {
        domains,
        protocol: fc.constantFrom('http', 'grpc'),
        routes: fc.array(route, { minLength: 1, maxLength: 3 }),
        timeouts: fc.record({ request: duration, idle: duration }, { requiredKeys: [] }),
        retries: fc.record({ attempts: fc.integer({ min: 0, max: 10 }), perTryTimeout: duration }, { requiredKeys: [] }),
        healthCheck: fc.record(
          { protocol: fc.constantFrom('tcp', 'http'), interval: duration, path: fc.constant('/healthz') },
          { requiredKeys: [] },
        ),
        outlierDetection: fc.record(
          { interval: duration, baseEjectionTime: duration, consecutive5xx: fc.integer({ min: 1, max: 10 }) },
          { requiredKeys: [] },
        ),
        rateLimit: fc.record({ requestsPerSecond: fc.integer({ min: 1, max: 1000 }) }),
        headers: fc.record(
          { request: fc.record({ add: fc.array(fc.record({ name: headerName, value: text }), { maxLength: 2 }) }) },
          { requiredKeys: [] },
        ),
        tls,
      },
      { requiredKeys: ['domains'] },
    ),
    revisionsAndTraffic,
  )
  .map(([spec, sources]) => ({ ...spec, ...sources }));

let counter = 0;

describe('a body the API accepts', () => {
  it('goes through store, translator and encoding without an error', async () => {
    const allowlist = EndpointAllowlist.parse(cidrs);
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, async (spec) => {
        const name = `s${counter++}`;
        const answer = await h.call('PUT', `/v1/tenants/prop/services/${name}`, { token: adminToken, body: spec });
        expect([200, 201, 400, 403, 409]).toContain(answer.status);
        if (answer.status >= 300) return;
        accepted++;
        const stored = h.store.view.service('prop', name);
        expect(stored).toBeDefined();
        const result = translate(
          {
            tenants: h.store.view.tenants().map((t) => t.record),
            services: [stored!.record],
            endpointSets: new Map(),
            health: new Map(),
            now: Date.now(),
          },
          { ...defaultTranslateOptions, endpointAllowlist: allowlist },
        );
        expect(result.errors).toEqual([]);
        for (const group of Object.values(result.snapshot)) {
          for (const [typeUrl, resources] of group) {
            for (const [resourceName, resource] of resources) encodeResource(typeUrl as XdsTypeUrl, resourceName, resource);
          }
        }
        expect(result.snapshot.envoy.get(TypeUrl.Cluster)?.has(`sy_prop_${name}_v1`)).toBe(true);
        expect((await h.call('DELETE', `/v1/tenants/prop/services/${name}`, { token: adminToken })).status).toBe(204);
      }),
      { numRuns: 300 },
    );
    // The generator must reach the accepting side too, or the property proves nothing.
    expect(accepted).toBeGreaterThan(10);
  }, 120_000);
});
