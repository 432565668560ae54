import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentRecord } from '@switchyard/shared';
import { adminToken, minimalGrpcService, startHarness, type Harness } from './harness.js';

/** HTTP conventions (RFC 9110, RFC 6585) the management API keeps, through fastify's inject. */
let h: Harness;
let token: string;
const applied: string[] = [];

beforeAll(async () => {
  h = await startHarness({
    deployments: {
      started: async () => undefined,
      // What the controller does with a manual rollback's step: write the deployment it returns.
      apply: async (stored, step) => {
        applied.push(step.deployment.phase);
        await h.store.putDeployment(step.deployment, { ifRevision: stored.revision });
      },
    },
  });
  expect((await h.call('PUT', '/v1/tenants/conv', { token: adminToken, body: { domains: ['conv.test'] } })).status).toBe(201);
  token = (await h.call('POST', '/v1/tenants/conv/tokens', { token: adminToken })).body.token as string;
  const service = { ...minimalGrpcService, domains: ['echo.conv.test'] };
  expect((await h.call('PUT', '/v1/tenants/conv/services/echo', { token, body: service })).status).toBe(201);
});
afterAll(async () => {
  await h?.close();
});

function expectErrorShape(body: unknown, status: number, code: string, field: string) {
  expect(body).toMatchObject({ status, code, issues: [{ field }] });
  expect(typeof (body as { message: unknown }).message).toBe('string');
}

describe('405 Method Not Allowed', () => {
  it.each([
    { method: 'POST', url: '/v1/tenants/conv/services/echo', allow: 'DELETE, GET, HEAD, PUT' },
    { method: 'PATCH', url: '/v1/tenants/conv', allow: 'DELETE, GET, HEAD, PUT' },
    { method: 'GET', url: '/v1/tenants/conv/services/echo/traffic', allow: 'PUT' },
    { method: 'DELETE', url: '/v1/tenants', allow: 'GET, HEAD' },
    { method: 'PUT', url: '/openapi.json', allow: 'GET, HEAD' },
  ] as const)('$method $url answers 405 with Allow: $allow', async ({ method, url, allow }) => {
    const response = await h.api.app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expectErrorShape(response.json(), 405, 'method_not_allowed', 'method');
  });

  it('answers 405 to a method with a body (QUERY) before reading the body', async () => {
    const response = await h.api.app.inject({ method: 'QUERY', url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
  });

  it('400 naming the parameter for a path parameter far over 63 characters, not 414', async () => {
    const response = await h.api.app.inject({
      method: 'GET',
      url: `/v1/tenants/${'a'.repeat(300)}`,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(response.statusCode).toBe(400);
    expectErrorShape(response.json(), 400, 'bad_request', 'path.tenant');
  });

  it('still answers 404 for a path no route has', async () => {
    const response = await h.api.app.inject({ method: 'POST', url: '/v1/tenants/conv/nothing/here' });
    expect(response.statusCode).toBe(404);
    expect(response.headers.allow).toBeUndefined();
  });
});

describe('bodies', () => {
  it('415 in the error shape for text/plain, even when the text is JSON', async () => {
    const response = await h.api.app.inject({
      method: 'PUT',
      url: '/v1/tenants/conv/services/echo',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      payload: JSON.stringify({ ...minimalGrpcService, domains: ['echo.conv.test'] }),
    });
    expect(response.statusCode).toBe(415);
    expectErrorShape(response.json(), 415, 'unsupported_media_type', 'header.content-type');
  });

  it('413 for a body within the HTTP limit but too large for the config store (NATS max_payload)', async () => {
    // 100 routes × 3 header matchers × 3,440 bytes: within every schema limit, under 1 MiB, over the store's limit.
    const routes = Array.from({ length: 100 }, (_, i) => ({
      match: {
        prefix: `/r${i}`,
        headers: Array.from({ length: 3 }, (_, j) => ({ name: `x-h${j}`, exact: 'v'.repeat(3440) })),
      },
    }));
    const body = JSON.stringify({ ...minimalGrpcService, domains: ['huge.conv.test'], routes });
    expect(body.length).toBeGreaterThan(1_040_000);
    expect(body.length).toBeLessThan(1024 * 1024);
    const response = await h.call('PUT', '/v1/tenants/conv/services/huge', {
      token,
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(413);
    expectErrorShape(response.body, 413, 'payload_too_large', '(body)');
    expect(response.body.message).toMatch(/config store takes at most \d+/);
    expect((await h.call('GET', '/v1/tenants/conv/services/huge', { token })).status).toBe(404);
  });

  it('POST …/rollback works without a body, with or without a JSON content-type', async () => {
    const deployment: DeploymentRecord = {
      schemaVersion: 1,
      id: 'd1',
      tenant: 'conv',
      service: 'echo',
      revision: 'green',
      previousRevision: 'blue',
      previousTraffic: [{ revision: 'blue', percent: 100 }],
      strategy: 'canary',
      steps: [20, 100],
      bakeMs: 60_000,
      maxErrorRatio: 0.05,
      phase: 'baking',
      stepIndex: 0,
      startedAt: 1,
      phaseSince: 1,
      message: '',
    };
    await h.store.putDeployment(deployment, { ifAbsent: true });
    const bare = await h.api.app.inject({
      method: 'POST',
      url: '/v1/tenants/conv/services/echo/rollback',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bare.statusCode).toBe(200);
    expect(bare.json()).toMatchObject({ phase: 'rolled_back', message: expect.stringContaining('requested through the API') });

    const stored = h.store.view.deployment('conv', 'echo');
    await h.store.putDeployment({ ...deployment, id: 'd2' }, { ifRevision: stored?.revision ?? 0 });
    const typed = await h.api.app.inject({
      method: 'POST',
      url: '/v1/tenants/conv/services/echo/rollback',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    expect(typed.statusCode).toBe(200);
    expect(applied).toEqual(['rolled_back', 'rolled_back']);
  });

  it('POST …/tokens works with an empty JSON body', async () => {
    const response = await h.api.app.inject({
      method: 'POST',
      url: '/v1/tenants/conv/tokens',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(201);
  });
});

describe('the OpenAPI document', () => {
  it('documents the precondition headers and 412 on every conditional write', async () => {
    const doc = (await h.call('GET', '/openapi.json')).body;
    const put = doc.paths['/v1/tenants/{tenant}/services/{service}'].put;
    expect(put.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['if-match', 'if-none-match']));
    expect(Object.keys(put.responses)).toEqual(expect.arrayContaining(['200', '201', '412', '413', '415']));
  });
});
