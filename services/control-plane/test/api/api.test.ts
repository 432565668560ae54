import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeStream, subjectPattern, streams, type ServiceStatusEvent } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { adminToken, minimalGrpcService, startHarness, type CallOptions, type Harness } from './harness.js';
import type { XdsNodeStatus } from '../../src/api/index.js';
import { eventually } from '../store/fixture.js';

const nodes: XdsNodeStatus[] = [
  {
    id: 'envoy-1',
    cluster: 'edge',
    userAgent: 'envoy',
    connectedAt: 1_700_000_000_000,
    resources: [
      {
        typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        status: 'ACKED',
        upToDate: true,
        mode: 'sotw',
        ackedVersion: '7',
        lastNack: null,
      },
      {
        typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener',
        status: 'NACKED',
        upToDate: false,
        mode: 'sotw',
        ackedVersion: '6',
        lastNack: { version: '7', error: 'bad listener', at: 1_700_000_000_500 },
      },
    ],
  },
];

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    config: {
      API_PORT: 0,
      SWITCHYARD_ADMIN_TOKEN: adminToken,
      SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8, 10.0.0.0/8, fd00::/8',
      SWITCHYARD_IMAGE_REGISTRIES: 'registry.svc.test/',
    },
    nodes: () => nodes,
    // What the wiring does: complete the spec-derived status with live state.
    status: (ref, fromSpec) => ({ ...fromSpec, xds: { version: `v${ref.specRevision}`, nodes: [], heldBack: null } }),
  });
});
afterAll(async () => {
  await h?.close();
});

const admin = (extra: Omit<CallOptions, 'token'> = {}): CallOptions => ({ token: adminToken, ...extra });

/** Creates a tenant with a grant and returns a fresh token for it. */
async function tenantWithToken(name: string, domains: string[]): Promise<string> {
  const created = await h.call('PUT', `/v1/tenants/${name}`, admin({ body: { domains } }));
  expect(created.status).toBe(201);
  const issued = await h.call('POST', `/v1/tenants/${name}/tokens`, admin());
  expect(issued.status).toBe(201);
  return issued.body.token as string;
}

/** Asserts the error body names exactly these fields (in order). */
function expectError(response: Awaited<ReturnType<Harness['call']>>, status: number, fields: string[]) {
  expect({ status: response.status, fields: response.body?.issues?.map((i: { field: string }) => i.field) }).toEqual({ status, fields });
  expect(response.body.status).toBe(status);
  expect(typeof response.body.code).toBe('string');
  expect(response.body.message).toContain(fields[0]);
}

describe('the minimal service body', () => {
  it('works as is, and GET returns its spec and status', async () => {
    const token = await tenantWithToken('acme', ['acme.test']);
    const put = await h.call('PUT', '/v1/tenants/acme/services/echo', { token, body: minimalGrpcService });
    expect(put.status).toBe(201);
    expect(put.headers.etag).toBe(`"${put.body.revision}"`);

    const get = await h.call('GET', '/v1/tenants/acme/services/echo', { token });
    expect(get.status).toBe(200);
    expect(get.body.spec).toMatchObject({ ...minimalGrpcService, timeouts: { request: 120_000 } });
    expect(get.body.status).toEqual({
      specRevision: put.body.revision,
      revisions: [
        {
          name: 'blue',
          source: 'static',
          percent: 80,
          endpoints: [{ address: '127.0.0.1', port: 50051, id: null, state: 'static', health: 'unknown' }],
        },
        {
          name: 'green',
          source: 'static',
          percent: 20,
          endpoints: [{ address: '127.0.0.1', port: 50052, id: null, state: 'static', health: 'unknown' }],
        },
      ],
      xds: { version: `v${put.body.revision}`, nodes: [], heldBack: null },
    });

    const list = await h.call('GET', '/v1/tenants/acme/services', { token });
    expect(list.body.services).toEqual([
      {
        name: 'echo',
        domains: ['echo.acme.test'],
        protocol: 'grpc',
        revisions: ['blue', 'green'],
        traffic: minimalGrpcService.traffic,
        revision: put.body.revision,
        updatedAt: expect.any(Number),
      },
    ]);
  });
});

describe('authentication and tenant isolation', () => {
  let tokenA: string;
  let tokenB: string;
  beforeAll(async () => {
    tokenA = await tenantWithToken('iso-a', ['iso-a.test']);
    tokenB = await tenantWithToken('iso-b', ['iso-b.test']);
    const put = await h.call('PUT', '/v1/tenants/iso-b/services/web', {
      token: tokenB,
      body: { domains: ['www.iso-b.test'], revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.2', port: 80 }] }] },
    });
    expect(put.status).toBe(201);
  });

  it.each([
    { label: 'no Authorization header', headers: {} },
    { label: 'an empty Authorization header', headers: { authorization: '' } },
    { label: 'a non-bearer scheme', headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } },
    { label: 'an unknown token', headers: { authorization: 'Bearer syt_not-a-real-token' } },
  ])('401 for $label', async ({ headers }) => {
    const response = await h.call('GET', '/v1/tenants/iso-a/services', { headers });
    expectError(response, 401, ['header.authorization']);
    expect(response.headers['www-authenticate']).toBe('Bearer');
  });

  it.each([
    ['PUT', '/v1/tenants/iso-a', { domains: ['iso-a.test'] }],
    ['GET', '/v1/tenants', undefined],
    ['DELETE', '/v1/tenants/iso-a', undefined],
    ['POST', '/v1/tenants/iso-a/tokens', undefined],
    ['GET', '/v1/nodes', undefined],
  ] as const)('403 for a tenant token on the admin route %s %s', async (method, url, body) => {
    const response = await h.call(method, url, { token: tokenA, body });
    expectError(response, 403, ['header.authorization']);
    expect(response.body.message).toContain('admin token');
  });

  it.each([
    ['GET', '/v1/tenants/iso-b', undefined],
    ['GET', '/v1/tenants/iso-b/services', undefined],
    ['GET', '/v1/tenants/iso-b/services/web', undefined],
    ['DELETE', '/v1/tenants/iso-b/services/web', undefined],
    [
      'PUT',
      '/v1/tenants/iso-b/services/web',
      { domains: ['www.iso-b.test'], revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.3', port: 80 }] }] },
    ],
    ['PUT', '/v1/tenants/iso-b/services/web/traffic', { traffic: [{ revision: 'v1', percent: 100 }] }],
  ] as const)("404 for a tenant token on another tenant's %s %s, the same as for no tenant at all", async (method, url, body) => {
    const foreign = await h.call(method, url, { token: tokenA, body });
    expectError(foreign, 404, ['path.tenant']);
    const missing = await h.call('GET', '/v1/tenants/nobody', admin());
    expect(foreign.body.message).toBe(missing.body.message.replace('nobody', 'iso-b'));
    const untouched = await h.call('GET', '/v1/tenants/iso-b/services/web', { token: tokenB });
    expect(untouched.body.spec.revisions[0].endpoints[0].address).toBe('10.0.0.2');
  });

  it('lets a tenant token read its own tenant and tells who it is', async () => {
    expect((await h.call('GET', '/v1/tenants/iso-a', { token: tokenA })).body).toMatchObject({ name: 'iso-a', domains: ['iso-a.test'] });
    expect((await h.call('GET', '/v1/whoami', { token: tokenA })).body).toEqual({ role: 'tenant', tenant: 'iso-a' });
    expect((await h.call('GET', '/v1/whoami', admin())).body).toEqual({ role: 'admin', tenant: null });
  });

  it('401 for the token of a deleted tenant, and deleting a tenant revokes its tokens', async () => {
    const token = await tenantWithToken('short-lived', ['short-lived.test']);
    expect((await h.call('DELETE', '/v1/tenants/short-lived', admin())).status).toBe(204);
    expectError(await h.call('GET', '/v1/whoami', { token }), 401, ['header.authorization']);
    expect(h.store.view.tokens().filter((t) => t.record.tenant === 'short-lived')).toEqual([]);
  });

  it('refuses every admin call when SWITCHYARD_ADMIN_TOKEN is unset', async () => {
    const { createApiServer } = await import('../../src/api/index.js');
    const api = await createApiServer({
      store: h.store,
      config: { API_PORT: 0, SWITCHYARD_ADMIN_TOKEN: undefined, SWITCHYARD_ENDPOINT_CIDRS: '' },
      logger: h.fixture.logger,
      registry: new Registry(),
      nodes: () => [],
    });
    const response = await api.app.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: `Bearer ${adminToken}` } });
    expect(response.statusCode).toBe(401);
    // A tenant token still works for its tenant.
    const own = await api.app.inject({ method: 'GET', url: '/v1/tenants/iso-a', headers: { authorization: `Bearer ${tokenA}` } });
    expect(own.statusCode).toBe(200);
    await api.close();
  });
});

describe('tenants and grants', () => {
  it('creates, lists, reads and replaces a grant with If-Match', async () => {
    const created = await h.call('PUT', '/v1/tenants/grant-a', admin({ body: { domains: ['grant-a.test'] } }));
    expect(created.status).toBe(201);
    const replaced = await h.call(
      'PUT',
      '/v1/tenants/grant-a',
      admin({ body: { domains: ['grant-a.test', 'grant-a.example'] }, headers: { 'if-match': created.headers.etag as string } }),
    );
    expect(replaced.status).toBe(200);
    expect(replaced.body.revision).toBeGreaterThan(created.body.revision);
    const list = await h.call('GET', '/v1/tenants', admin());
    expect(list.body.tenants).toContainEqual(expect.objectContaining({ name: 'grant-a', domains: ['grant-a.test', 'grant-a.example'] }));
  });

  it.each([
    {
      label: 'a tenant name that is not a DNS label',
      url: '/v1/tenants/Bad_Name',
      body: { domains: ['x.test'] },
      status: 400,
      fields: ['path.tenant'],
    },
    { label: 'a missing domains list', url: '/v1/tenants/t400', body: {}, status: 400, fields: ['domains'] },
    { label: 'a wildcard grant', url: '/v1/tenants/t400', body: { domains: ['*.t400.test'] }, status: 400, fields: ['domains[0]'] },
    {
      label: 'an uppercase domain',
      url: '/v1/tenants/t400',
      body: { domains: ['ok.test', 'Bad.TEST'] },
      status: 400,
      fields: ['domains[1]'],
    },
    { label: 'an unknown field', url: '/v1/tenants/t400', body: { domains: [], snippet: 'x' }, status: 400, fields: ['(body)'] },
    {
      label: 'a body that is not JSON',
      url: '/v1/tenants/t400',
      body: '{"domains": [',
      status: 400,
      fields: ['(body)'],
      headers: { 'content-type': 'application/json' },
    },
    {
      label: 'a body that is not JSON at all',
      url: '/v1/tenants/t400',
      body: 'domains=x',
      status: 415,
      fields: ['header.content-type'],
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    },
    {
      label: 'a malformed If-Match',
      url: '/v1/tenants/t400',
      body: { domains: ['t400.test'] },
      status: 400,
      fields: ['header.if-match'],
      headers: { 'if-match': 'latest' },
    },
  ])('400s: $label', async ({ url, body, status, fields, headers }) => {
    expectError(await h.call('PUT', url, admin({ body, headers })), status, fields);
  });

  it('409 for a grant overlapping another tenant, either way round', async () => {
    await tenantWithToken('owner', ['owner.test', 'api.wide.test']);
    expectError(await h.call('PUT', '/v1/tenants/squatter', admin({ body: { domains: ['ok.squatter.test', 'api.owner.test'] } })), 409, [
      'domains[1]',
    ]);
    const wider = await h.call('PUT', '/v1/tenants/squatter', admin({ body: { domains: ['wide.test'] } }));
    expect(wider.status).toBe(409);
    expect(wider.body.issues).toContainEqual({
      field: 'domains[0]',
      message: '"wide.test" overlaps "api.wide.test", which is granted to tenant "owner"',
    });
    expect((await h.call('GET', '/v1/tenants/squatter', admin())).status).toBe(404);
  });

  it('PUT replaces without preconditions; a stale or absent If-Match answers 412', async () => {
    const first = await h.call('PUT', '/v1/tenants/cas', admin({ body: { domains: ['cas.test'] } }));
    expect(first.status).toBe(201);
    const replaced = await h.call('PUT', '/v1/tenants/cas', admin({ body: { domains: ['cas.test', 'cas.example'] } }));
    expect(replaced.status).toBe(200);
    expect(replaced.body.domains).toEqual(['cas.test', 'cas.example']);
    const stale = await h.call(
      'PUT',
      '/v1/tenants/cas',
      admin({ body: { domains: ['cas.test'] }, headers: { 'if-match': `"${first.body.revision}"` } }),
    );
    expectError(stale, 412, ['header.if-match']);
    expect(stale.body.code).toBe('precondition_failed');
    expect(stale.body.message).toContain(`is at "${replaced.body.revision}" now`);
    expectError(
      await h.call('PUT', '/v1/tenants/no-such', admin({ body: { domains: ['no-such.test'] }, headers: { 'if-match': '"3"' } })),
      412,
      ['header.if-match'],
    );
    expect((await h.call('GET', '/v1/tenants/no-such', admin())).status).toBe(404);
  });

  it('413 for a body over 1 MiB, 400 for an empty JSON body', async () => {
    const huge = JSON.stringify({ domains: Array.from({ length: 60_000 }, (_, i) => `d${i}.big.test`) });
    expectError(await h.call('PUT', '/v1/tenants/big', admin({ body: huge, headers: { 'content-type': 'application/json' } })), 413, [
      '(body)',
    ]);
    expectError(await h.call('PUT', '/v1/tenants/big', admin({ body: '', headers: { 'content-type': 'application/json' } })), 400, [
      '(body)',
    ]);
  });

  it('412 for deleting a tenant at a stale If-Match', async () => {
    const created = await h.call('PUT', '/v1/tenants/stale-del', admin({ body: { domains: ['stale-del.test'] } }));
    await h.call(
      'PUT',
      '/v1/tenants/stale-del',
      admin({ body: { domains: ['stale-del.example'] }, headers: { 'if-match': created.headers.etag as string } }),
    );
    expectError(await h.call('DELETE', '/v1/tenants/stale-del', admin({ headers: { 'if-match': created.headers.etag as string } })), 412, [
      'header.if-match',
    ]);
    expect((await h.call('GET', '/v1/tenants/stale-del', admin())).status).toBe(200);
  });

  it('409 for shrinking a grant under a service; deleting the tenant deletes its services', async () => {
    const token = await tenantWithToken('shrink', ['shrink.test']);
    await h.call('PUT', '/v1/tenants/shrink/services/api', {
      token,
      body: { domains: ['api.shrink.test'], revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.1', port: 80 }] }] },
    });
    const etag = (await h.call('GET', '/v1/tenants/shrink', admin())).headers.etag as string;
    expectError(
      await h.call('PUT', '/v1/tenants/shrink', admin({ body: { domains: ['web.shrink.test'] }, headers: { 'if-match': etag } })),
      409,
      ['domains'],
    );
    expect((await h.call('DELETE', '/v1/tenants/shrink', admin())).status).toBe(204);
    expect(h.store.view.services('shrink')).toEqual([]);
  });

  it.each([
    ['GET', '/v1/tenants/ghost'],
    ['DELETE', '/v1/tenants/ghost'],
    ['POST', '/v1/tenants/ghost/tokens'],
    ['GET', '/v1/tenants/ghost/services'],
    ['GET', '/v1/tenants/ghost/services/web'],
  ] as const)('404 for %s %s of a tenant that does not exist', async (method, url) => {
    expectError(await h.call(method, url, admin()), 404, ['path.tenant']);
  });

  it('stores tokens only hashed', async () => {
    const token = await tenantWithToken('hashed', ['hashed.test']);
    const stored = h.store.view.tokens().filter((t) => t.record.tenant === 'hashed');
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(stored[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('services', () => {
  let token: string;
  const spec = (domains: string[], address = '10.0.0.1') => ({
    domains,
    revisions: [{ name: 'v1', endpoints: [{ address, port: 8080 }] }],
  });
  beforeAll(async () => {
    token = await tenantWithToken('svc', ['svc.test']);
    expect((await h.call('PUT', '/v1/tenants/svc/services/wild', { token, body: spec(['*.wild.svc.test']) })).status).toBe(201);
  });

  it('accepts an image from a registry the operator allows (SWITCHYARD_IMAGE_REGISTRIES)', async () => {
    const imagesToken = await tenantWithToken('images', ['images.test']);
    const body = { domains: ['web.images.test'], revisions: [{ name: 'v1', image: 'registry.svc.test/web:1' }] };
    expect((await h.call('PUT', '/v1/tenants/images/services/web', { token: imagesToken, body })).status).toBe(201);
  });

  it.each([
    {
      label: 'a service name that is not a DNS label',
      url: '/v1/tenants/svc/services/My.Service',
      body: spec(['a.svc.test']),
      status: 400,
      fields: ['path.service'],
    },
    { label: 'no body', url: '/v1/tenants/svc/services/s400', body: undefined, status: 400, fields: ['(body)'] },
    { label: 'no revisions', url: '/v1/tenants/svc/services/s400', body: { domains: ['a.svc.test'] }, status: 400, fields: ['revisions'] },
    {
      label: 'traffic that does not sum to 100',
      url: '/v1/tenants/svc/services/s400',
      body: {
        ...minimalGrpcService,
        domains: ['a.svc.test'],
        traffic: [
          { revision: 'blue', percent: 50 },
          { revision: 'green', percent: 20 },
        ],
      },
      status: 400,
      fields: ['traffic'],
    },
    {
      label: 'traffic naming no revision',
      url: '/v1/tenants/svc/services/s400',
      body: {
        ...minimalGrpcService,
        domains: ['a.svc.test'],
        traffic: [
          { revision: 'blue', percent: 80 },
          { revision: 'red', percent: 20 },
        ],
      },
      status: 400,
      fields: ['traffic[1].revision'],
    },
    {
      label: 'minInstances above maxInstances',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), scaling: { minInstances: 5, maxInstances: 2 } },
      status: 400,
      fields: ['scaling.minInstances'],
    },
    {
      label: 'maxConcurrency out of range',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), scaling: { maxConcurrency: 5000 } },
      status: 400,
      fields: ['scaling.maxConcurrency'],
    },
    {
      label: 'targetBurstCapacity below -1',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), scaling: { targetBurstCapacity: -2 } },
      status: 400,
      fields: ['scaling.targetBurstCapacity'],
    },
    {
      label: 'a panic window longer than the stable window',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), scaling: { stableWindow: '10s', panicWindow: '20s' } },
      status: 400,
      fields: ['scaling.panicWindow'],
    },
    {
      label: 'a per-try timeout above the request timeout',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), timeouts: { request: '2s' }, retries: { perTryTimeout: '5s' } },
      status: 400,
      fields: ['retries.perTryTimeout'],
    },
    {
      label: 'a reserved header',
      url: '/v1/tenants/svc/services/s400',
      body: { ...spec(['a.svc.test']), headers: { request: { add: [{ name: 'x-envoy-upstream-rq-timeout-ms', value: '1' }] } } },
      status: 400,
      fields: ['headers.request.add[0].name'],
    },
    {
      label: 'an endpoint address that is not an IP',
      url: '/v1/tenants/svc/services/s400',
      body: spec(['a.svc.test'], 'localhost'),
      status: 400,
      fields: ['revisions[0].endpoints[0].address'],
    },
    {
      label: 'an image from a registry the operator does not allow',
      url: '/v1/tenants/svc/services/s400',
      body: { domains: ['a.svc.test'], revisions: [{ name: 'v1', image: 'docker.io/library/nginx:1' }] },
      status: 400,
      fields: ['revisions[0].image'],
    },
    {
      label: 'a domain outside the grant',
      url: '/v1/tenants/svc/services/s403',
      body: spec(['a.svc.test', 'a.other.test']),
      status: 403,
      fields: ['domains[1]'],
    },
    {
      label: 'a wildcard wider than the grant',
      url: '/v1/tenants/svc/services/s403',
      body: spec(['*.test']),
      status: 403,
      fields: ['domains[0]'],
    },
    {
      label: 'an endpoint outside the allowlist',
      url: '/v1/tenants/svc/services/s403',
      body: spec(['a.svc.test'], '192.168.1.1'),
      status: 403,
      fields: ['revisions[0].endpoints[0].address'],
    },
    {
      label: 'the cloud metadata address',
      url: '/v1/tenants/svc/services/s403',
      body: spec(['a.svc.test'], '169.254.169.254'),
      status: 403,
      fields: ['revisions[0].endpoints[0].address'],
    },
    {
      label: 'the IPv6 cloud metadata address',
      url: '/v1/tenants/svc/services/s403',
      body: spec(['a.svc.test'], 'fd00:ec2::254'),
      status: 403,
      fields: ['revisions[0].endpoints[0].address'],
    },
    {
      label: 'a host under a sibling wildcard',
      url: '/v1/tenants/svc/services/s409',
      body: spec(['x.wild.svc.test']),
      status: 409,
      fields: ['domains[0]'],
    },
    {
      label: 'a wildcard over a sibling wildcard',
      url: '/v1/tenants/svc/services/s409',
      body: spec(['*.svc.test']),
      status: 409,
      fields: ['domains[0]'],
    },
    {
      label: 'a service of a tenant that does not exist',
      url: '/v1/tenants/ghost/services/s404',
      body: spec(['a.svc.test']),
      status: 404,
      fields: ['path.tenant'],
      asAdmin: true,
    },
  ])('$status: $label', async ({ url, body, status, fields, asAdmin }) => {
    const response = await h.call('PUT', url, asAdmin ? admin({ body }) : { token, body });
    expectError(response, status, fields);
    expect(h.store.view.service('svc', url.split('/').at(-1) as string)).toBeUndefined();
  });

  it('400 names every bad field at once', async () => {
    const response = await h.call('PUT', '/v1/tenants/svc/services/many', {
      token,
      body: { domains: ['Bad'], protocol: 'ftp', revisions: [{ name: 'v1' }] },
    });
    expectError(response, 400, ['domains[0]', 'protocol', 'revisions[0]']);
  });

  it('PUT creates then replaces; If-Match and If-None-Match work as RFC 9110 says', async () => {
    const url = '/v1/tenants/svc/services/cas';
    const put = (body: unknown, headers: Record<string, string> = {}) => h.call('PUT', url, { token, body, headers });
    // If-Match on a service that does not exist (even *) fails; If-None-Match: * creates.
    expectError(await put(spec(['cas.svc.test']), { 'if-match': '*' }), 412, ['header.if-match']);
    expectError(await put(spec(['cas.svc.test']), { 'if-match': '"1"' }), 412, ['header.if-match']);
    const created = await put(spec(['cas.svc.test']), { 'if-none-match': '*' });
    expect(created.status).toBe(201);
    const etag = created.headers.etag as string;
    // If-None-Match: * refuses to overwrite; so does If-None-Match naming the current version (weakly, too).
    expectError(await put(spec(['cas.svc.test'], '10.0.0.1'), { 'if-none-match': '*' }), 412, ['header.if-none-match']);
    expectError(await put(spec(['cas.svc.test'], '10.0.0.1'), { 'if-none-match': `W/${etag}` }), 412, ['header.if-none-match']);
    // Without preconditions a PUT replaces (200).
    const replaced = await put(spec(['cas.svc.test'], '10.0.0.2'));
    expect(replaced.status).toBe(200);
    expect(replaced.body.spec.revisions[0].endpoints[0].address).toBe('10.0.0.2');
    // A stale If-Match fails; a list holding the current one, or *, or a weak-but-stale If-None-Match passes.
    expectError(await put(spec(['cas.svc.test'], '10.0.0.3'), { 'if-match': etag }), 412, ['header.if-match']);
    expectError(await put(spec(['cas.svc.test'], '10.0.0.3'), { 'if-match': `W/${replaced.headers.etag as string}` }), 412, [
      'header.if-match',
    ]);
    const listed = await put(spec(['cas.svc.test'], '10.0.0.3'), { 'if-match': `${etag}, ${replaced.headers.etag as string}` });
    expect(listed.status).toBe(200);
    const any = await put(spec(['cas.svc.test'], '10.0.0.4'), { 'if-match': '*', 'if-none-match': etag });
    expect(any.status).toBe(200);
    // DELETE: a stale If-Match fails and deletes nothing; the current one deletes.
    expectError(await h.call('DELETE', url, { token, headers: { 'if-match': etag } }), 412, ['header.if-match']);
    expect((await h.call('DELETE', url, { token, headers: { 'if-match': any.headers.etag as string } })).status).toBe(204);
    expectError(await h.call('GET', url, { token }), 404, ['path.service']);
    // Preconditions are not judged on what would be a 404 anyway.
    expectError(await h.call('DELETE', url, { token, headers: { 'if-match': '*' } }), 404, ['path.service']);
    // Once deleted, its hosts are free again, and the name can be created anew.
    expect((await h.call('PUT', '/v1/tenants/svc/services/cas2', { token, body: spec(['cas.svc.test']) })).status).toBe(201);
  });

  it('re-applying an identical spec changes nothing: same ETag, no new KV revision', async () => {
    const url = '/v1/tenants/svc/services/same';
    const created = await h.call('PUT', url, { token, body: spec(['same.svc.test']) });
    const bucketBefore = h.store.view.revision;
    const again = await h.call('PUT', url, { token, body: spec(['same.svc.test']) });
    expect(again.status).toBe(200);
    expect(again.headers.etag).toBe(created.headers.etag);
    expect(again.body.updatedAt).toBe(created.body.updatedAt);
    expect(h.store.view.revision).toBe(bucketBefore);
  });

  it('deletes the deployment record with its service', async () => {
    expect((await h.call('PUT', '/v1/tenants/svc/services/deployed', { token, body: spec(['deployed.svc.test']) })).status).toBe(201);
    await h.store.putDeployment(
      {
        schemaVersion: 1,
        id: 'd1',
        tenant: 'svc',
        service: 'deployed',
        revision: 'v1',
        previousRevision: null,
        previousTraffic: [],
        strategy: 'blue-green',
        steps: [100],
        bakeMs: 0,
        maxErrorRatio: 0.05,
        phase: 'completed',
        stepIndex: 0,
        startedAt: 1,
        phaseSince: 1,
        message: '',
      },
      { ifAbsent: true },
    );
    expect((await h.call('DELETE', '/v1/tenants/svc/services/deployed', { token })).status).toBe(204);
    expect(h.store.view.deployment('svc', 'deployed')).toBeUndefined();
  });

  it("rejects one tenant's bad input without touching another tenant's service", async () => {
    const other = await tenantWithToken('bystander', ['bystander.test']);
    const before = await h.call('PUT', '/v1/tenants/bystander/services/web', { token: other, body: spec(['www.bystander.test']) });
    expect((await h.call('PUT', '/v1/tenants/svc/services/evil', { token, body: spec(['www.bystander.test']) })).status).toBe(403);
    const after = await h.call('PUT', '/v1/tenants/bystander/services/web', {
      token: other,
      body: spec(['www.bystander.test'], '10.0.0.7'),
      headers: { 'if-match': before.headers.etag as string },
    });
    expect(after.status).toBe(200);
  });
});

describe('traffic', () => {
  let token: string;
  beforeAll(async () => {
    token = await tenantWithToken('shift', ['shift.test']);
    const body = { ...minimalGrpcService, domains: ['echo.shift.test'] };
    expect((await h.call('PUT', '/v1/tenants/shift/services/echo', { token, body })).status).toBe(201);
  });

  it('shifts traffic and reports it in the status', async () => {
    const response = await h.call('PUT', '/v1/tenants/shift/services/echo/traffic', {
      token,
      body: {
        traffic: [
          { revision: 'blue', percent: 10 },
          { revision: 'green', percent: 90 },
        ],
      },
    });
    expect(response.status).toBe(200);
    expect(response.body.status.revisions.map((r: { percent: number }) => r.percent)).toEqual([10, 90]);
    expect(response.body.spec.traffic).toEqual([
      { revision: 'blue', percent: 10 },
      { revision: 'green', percent: 90 },
    ]);
  });

  it.each([
    { label: 'a sum other than 100', body: { traffic: [{ revision: 'blue', percent: 10 }] }, status: 400, fields: ['traffic'] },
    {
      label: 'an unknown revision',
      body: {
        traffic: [
          { revision: 'blue', percent: 50 },
          { revision: 'red', percent: 50 },
        ],
      },
      status: 400,
      fields: ['traffic[1].revision'],
    },
    {
      label: 'a percentage above 100',
      body: { traffic: [{ revision: 'blue', percent: 101 }] },
      status: 400,
      fields: ['traffic[0].percent'],
    },
    { label: 'an empty list', body: { traffic: [] }, status: 400, fields: ['traffic'] },
    {
      label: 'a stale If-Match',
      body: { traffic: [{ revision: 'blue', percent: 100 }] },
      status: 412,
      fields: ['header.if-match'],
      headers: { 'if-match': '"1"' },
    },
    {
      label: 'a malformed If-Match',
      body: { traffic: [{ revision: 'blue', percent: 100 }] },
      status: 400,
      fields: ['header.if-match'],
      headers: { 'if-match': 'latest' },
    },
  ])('$status: $label', async ({ body, status, fields, headers }) => {
    expectError(await h.call('PUT', '/v1/tenants/shift/services/echo/traffic', { token, body, headers }), status, fields);
  });

  it('404 for the traffic of a service that does not exist', async () => {
    expectError(
      await h.call('PUT', '/v1/tenants/shift/services/nope/traffic', { token, body: { traffic: [{ revision: 'blue', percent: 100 }] } }),
      404,
      ['path.service'],
    );
  });
});

describe('status events', () => {
  it('publishes applied, traffic and deleted on switchyard.status.<tenant>.<service>', async () => {
    const token = await tenantWithToken('events', ['events.test']);
    const seen: ServiceStatusEvent[] = [];
    const consumer = await consumeStream(
      await h.fixture.connect(),
      'status',
      { stream: streams.events.name, pattern: subjectPattern('status', { tenant: 'events', service: 'echo' }), replay: { from: 'all' } },
      { logger: h.fixture.logger, registry: new Registry() },
      (message) => {
        seen.push(message.payload);
      },
    );
    const body = { ...minimalGrpcService, domains: ['echo.events.test'] };
    const applied = await h.call('PUT', '/v1/tenants/events/services/echo', { token, body });
    // The same spec again is no change: no event (it would land between applied and traffic).
    expect((await h.call('PUT', '/v1/tenants/events/services/echo', { token, body })).headers.etag).toBe(applied.headers.etag);
    const split = {
      traffic: [
        { revision: 'green', percent: 100 },
        { revision: 'blue', percent: 0 },
      ],
    };
    const shifted = await h.call('PUT', '/v1/tenants/events/services/echo/traffic', { token, body: split });
    expect((await h.call('PUT', '/v1/tenants/events/services/echo/traffic', { token, body: split })).headers.etag).toBe(
      shifted.headers.etag,
    );
    await h.call('DELETE', '/v1/tenants/events/services/echo', { token });
    await eventually(() => expect(seen.map((e) => e.event)).toEqual(['applied', 'traffic', 'deleted']));
    expect(seen[0]).toMatchObject({
      tenant: 'events',
      service: 'echo',
      specRevision: applied.body.revision,
      revisions: ['blue', 'green'],
      traffic: body.traffic,
    });
    expect(seen[1]).toMatchObject({
      specRevision: shifted.body.revision,
      traffic: [
        { revision: 'green', percent: 100 },
        { revision: 'blue', percent: 0 },
      ],
    });
    expect(seen[2]).toMatchObject({ specRevision: shifted.body.revision });
    await consumer.stop();
  });
});

describe('nodes, OpenAPI and unknown routes', () => {
  it('serves the nodes provider to the admin', async () => {
    expect((await h.call('GET', '/v1/nodes', admin())).body).toEqual({ nodes });
  });

  it('serves the OpenAPI document without a token, generated from the zod schemas', async () => {
    const response = await h.call('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    expect(Object.keys(response.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/tenants/{tenant}',
        '/v1/tenants/{tenant}/services/{service}',
        '/v1/tenants/{tenant}/services/{service}/traffic',
        '/v1/nodes',
      ]),
    );
    const body = response.body.paths['/v1/tenants/{tenant}/services/{service}'].put.requestBody.content['application/json'].schema;
    expect(body.properties.scaling.properties.maxConcurrency).toMatchObject({ minimum: 1, maximum: 1000 });
  });

  it('404 for a route that does not exist', async () => {
    expectError(await h.call('GET', '/v2/things', admin()), 404, ['path']);
  });

  it('counts requests by route and status', async () => {
    const metric = await h.registry.getSingleMetricAsString('switchyard_control_plane_api_requests_total');
    expect(metric).toMatch(/route="\/v1\/tenants\/:tenant\/services\/:service",status="201"} \d+/);
  });
});
