import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointSet, NatsConnection } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { BusInputs } from '../../src/controller/bus-inputs.js';
import { DeploymentController } from '../../src/deployment/controller.js';
import { defaultPlannerSettings } from '../../src/deployment/planner.js';
import type { DeployEvent, StatusEvent } from '../../src/api/index.js';
import { adminToken, startHarness, type Harness } from '../api/harness.js';

/**
 * Issue 12: one failing deployment must not stall the others, and a spec change that removes a
 * revision an active deployment needs is refused with 409 naming the deployment.
 */
describe('the deployment controller with two deployments in progress', () => {
  let h: Harness;
  let nc: NatsConnection;
  let inputs: BusInputs;
  let controller: DeploymentController;
  const deployEvents: DeployEvent[] = [];
  const statusEvents: StatusEvent[] = [];
  const clock = { now: Date.now() };
  const admin = { token: adminToken };
  const ids: Record<string, string> = {};

  const spec = (name: string, revisions: string[]) => ({
    domains: [`${name}.acme.test`],
    protocol: 'grpc',
    revisions: revisions.map((revision, i) => ({ name: revision, endpoints: [{ address: '127.0.0.1', port: 50_000 + i }] })),
  });
  const readySet = (service: string, revision: string): EndpointSet => ({
    schemaVersion: 1,
    tenant: 'acme',
    service,
    revision,
    generation: 1,
    endpoints: [{ id: `${service}-1`, address: '127.0.0.1', port: 40_001, state: 'ready' }],
    ts: clock.now,
  });

  beforeAll(async () => {
    const hooks = {
      started: async () => undefined,
      apply: (...args: Parameters<DeploymentController['apply']>) => controller.apply(...args),
    };
    h = await startHarness({ deployments: hooks });
    nc = await h.fixture.connect();
    const deps = { logger: h.fixture.logger, registry: new Registry() };
    inputs = await BusInputs.start(nc, deps);
    controller = new DeploymentController({
      store: h.store,
      inputs,
      logger: h.fixture.logger,
      publishDeployment: async (event) => void deployEvents.push(event),
      publishStatus: async (event) => void statusEvents.push(event),
      settings: defaultPlannerSettings,
      intervalMs: 60_000,
      now: () => clock.now,
    });
    expect((await h.call('PUT', '/v1/tenants/acme', { ...admin, body: { domains: ['acme.test'] } })).status).toBe(201);
    for (const service of ['first', 'second']) {
      expect((await h.call('PUT', `/v1/tenants/acme/services/${service}`, { ...admin, body: spec(service, ['blue']) })).status).toBe(201);
      const begun = await h.call('POST', `/v1/tenants/acme/services/${service}/deployments`, {
        ...admin,
        body: { revision: 'green', command: ['node', 'app.js'] },
      });
      expect(begun.status).toBe(201);
      ids[service] = begun.body.id as string;
    }
  });
  afterAll(async () => {
    await inputs?.stop();
    await h?.close();
  });

  it('refuses a spec change that removes a revision of the active deployment, naming it', async () => {
    const current = await h.call('GET', '/v1/tenants/acme/services/first', admin);
    const refused = await h.call('PUT', '/v1/tenants/acme/services/first', {
      ...admin,
      headers: { 'if-match': current.headers.etag as string },
      body: spec('first', ['blue']),
    });
    expect(refused.status).toBe(409);
    expect(refused.body.issues).toEqual([{ field: 'body.revisions', message: expect.stringContaining(ids.first) }]);
    expect(refused.body.message).toContain('green');
    // Keeping both revisions is fine.
    const kept = current.body.spec as { revisions: { name: string }[] };
    const accepted = await h.call('PUT', '/v1/tenants/acme/services/first', {
      ...admin,
      headers: { 'if-match': current.headers.etag as string },
      body: { ...current.body.spec, revisions: kept.revisions },
    });
    expect(accepted.status).toBe(200);
  });

  it('advances the other deployments when one of them fails', async () => {
    // A writer that bypasses the API (an older replica, a hand edit of the bucket) removed the revision "first" deploys.
    const first = h.store.view.service('acme', 'first');
    if (first === undefined) throw new Error('no service first');
    const withoutGreen = {
      ...first.record,
      spec: { ...first.record.spec, revisions: first.record.spec.revisions.slice(0, 1), traffic: [] },
    };
    await h.store.putService(withoutGreen, { ifRevision: first.revision });
    for (const service of ['first', 'second']) inputs.applyEndpointSet(readySet(service, 'green'), Date.now());

    await controller.tick();

    expect(h.store.view.deployment('acme', 'first')?.record.phase).toBe('scaling');
    const second = h.store.view.deployment('acme', 'second')?.record;
    expect(second?.phase).toBe('baking');
    expect(h.store.view.service('acme', 'second')?.record.spec.traffic).toEqual([{ revision: 'green', percent: 100 }]);
    expect(deployEvents.map((e) => [e.service, e.phase])).toEqual([['second', 'shifting']]);
    expect(statusEvents.map((e) => [e.service, e.event])).toEqual([['second', 'traffic']]);
  });
});
