import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, type EnvoyWorld } from './support.js';
import { eventually } from '../support/stack.js';

/** A route Envoy refuses once its RE2 limit is lowered below this regex's program size (the translator accepts it). */
const rejectedRoute = { match: { regex: '^/(alpha|beta)/[a-z]{2}$' } };

/**
 * One tenant's config that Envoy rejects must not stall the others: each service's route
 * configuration is its own RDS resource, and Envoy rejects that one alone while the control
 * plane holds the service at its last good spec. Envoy runs here with `re2.max_program_size.error_level` lowered
 * to 5 — the way an operator's Envoy and control plane can disagree — so a regex the control
 * plane accepts reaches Envoy and is NACKed for real.
 */
describe('a NACK stays with the service that caused it', () => {
  let world: EnvoyWorld;
  let acme: TestBackend;
  let globex: TestBackend;

  beforeAll(async () => {
    acme = await TestBackend.start('acme');
    globex = await TestBackend.start('globex');
    world = await startEnvoyWorld({
      bootstrap: (bootstrap) => {
        const layers = (bootstrap.layered_runtime as { layers: { static_layer?: Record<string, unknown> }[] }).layers;
        layers[0]!.static_layer!['re2.max_program_size.error_level'] = 5;
      },
    });
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/globex', { domains: ['globex.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: [{ name: 'v1', endpoints: [acme.endpoint] }],
    });
    await world.api.ok('PUT', '/v1/tenants/globex/services/api', {
      domains: ['api.globex.test'],
      revisions: [{ name: 'v1', endpoints: [globex.endpoint] }],
    });
    await world.until('web.acme.test', '/', (a) => a.status === 200);
    await world.until('api.globex.test', '/', (a) => a.status === 200);
  });
  afterAll(async () => {
    await world?.stop();
    await acme?.stop();
    await globex?.stop();
  });

  it("holds the rejected service at its last good spec, shows Envoy's message, and keeps another tenant updating within 1 s", async () => {
    await world.api.replace('/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: [{ name: 'v1', endpoints: [acme.endpoint] }],
      routes: [rejectedRoute],
    });
    const held = await eventually(async () => {
      const status = (await world.api.ok('GET', '/v1/tenants/acme/services/web')).status;
      if (status.xds?.heldBack === null || status.xds?.heldBack === undefined) throw new Error('not held back yet');
      return status.xds.heldBack;
    });
    expect(held.error).toMatch(/program size/i);
    expect(held.servingPrevious).toBe(true);
    // The last accepted spec (prefix "/") is what Envoy still routes for acme.
    expect((await world.http('web.acme.test', '/anything')).status).toBe(200);

    const started = Date.now();
    await world.api.replace('/v1/tenants/globex/services/api', {
      domains: ['api.globex.test'],
      revisions: [{ name: 'v1', endpoints: [globex.endpoint] }],
      headers: { response: { add: [{ name: 'x-release', value: 'two' }] } },
    });
    const answer = await world.until('api.globex.test', '/', (a) => a.headers['x-release'] === 'two', 5_000);
    const elapsed = Date.now() - started;
    console.log(`another tenant's change reached Envoy in ${elapsed} ms while acme/web was held back`);
    expect(echoOf(answer).backend).toBe('globex');
    expect(elapsed).toBeLessThan(1_000);
  });

  it('serves the service again once its spec changes to one Envoy accepts', async () => {
    await world.api.replace('/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: [{ name: 'v1', endpoints: [acme.endpoint] }],
      routes: [{ match: { prefix: '/only' } }],
    });
    await world.until('web.acme.test', '/anything', (a) => a.status === 404);
    expect((await world.http('web.acme.test', '/only/here')).status).toBe(200);
    const status = (await world.api.ok('GET', '/v1/tenants/acme/services/web')).status;
    expect(status.xds.heldBack).toBeNull();
  });
});
