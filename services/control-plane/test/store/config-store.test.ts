import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buckets,
  openBucket,
  serviceSpec,
  untilConnected,
  type DeploymentRecord,
  type ServiceRecord,
  type TenantRecord,
} from '@switchyard/shared';
import { jetstreamManager } from '@nats-io/jetstream';
import { Registry } from 'prom-client';
import { RevisionConflict, type ConfigChange, type ConfigStore, type ConfigView } from '../../src/store/index.js';
import { StoreFixture, eventually } from './fixture.js';

const tenant = (name: string, domains: string[]): TenantRecord => ({ schemaVersion: 1, name, spec: { domains }, updatedAt: Date.now() });
const service = (tenantName: string, name: string, domain: string): ServiceRecord => ({
  schemaVersion: 1,
  tenant: tenantName,
  name,
  spec: serviceSpec.parse({ domains: [domain], revisions: [{ name: 'blue', endpoints: [{ address: '10.0.0.1', port: 80 }] }] }),
  updatedAt: Date.now(),
});

/** What a view holds, independent of the order it learnt it in. */
function contents(view: ConfigView) {
  return {
    revision: view.revision,
    tenants: view.tenants(),
    services: view.services(),
    tokens: view.tokens().sort((a, b) => a.hash.localeCompare(b.hash)),
    deployments: view.deployments(),
  };
}

describe('ConfigStore against a real nats-server', () => {
  let fixture: StoreFixture;
  beforeEach(async () => {
    fixture = await StoreFixture.start();
  });
  afterEach(async () => {
    await fixture.close();
  });

  it('creates only absent keys and updates only the revision the writer read', async () => {
    const store = await fixture.openStore();
    const first = await store.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    expect(store.view.tenant('acme')).toMatchObject({ revision: first });

    await expect(store.putTenant(tenant('acme', ['other.test']), { ifAbsent: true })).rejects.toBeInstanceOf(RevisionConflict);
    await expect(store.putTenant(tenant('acme', ['other.test']), { ifRevision: first + 10 })).rejects.toBeInstanceOf(RevisionConflict);

    const second = await store.putTenant(tenant('acme', ['acme.example']), { ifRevision: first });
    expect(second).toBeGreaterThan(first);
    await expect(store.putTenant(tenant('acme', ['late.test']), { ifRevision: first })).rejects.toThrow(/not at revision/);
    expect(store.view.tenant('acme')).toMatchObject({ revision: second, record: { spec: { domains: ['acme.example'] } } });
  });

  it('deletes with and without a revision condition, and allows re-creating afterwards', async () => {
    const store = await fixture.openStore();
    await store.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    const rev = await store.putService(service('acme', 'echo', 'echo.acme.test'), { ifAbsent: true });
    await expect(store.deleteService('acme', 'echo', rev + 5)).rejects.toBeInstanceOf(RevisionConflict);
    expect(store.view.service('acme', 'echo')).toBeDefined();
    await store.deleteService('acme', 'echo', rev);
    expect(store.view.service('acme', 'echo')).toBeUndefined();
    await store.putService(service('acme', 'echo', 'echo.acme.test'), { ifAbsent: true });
    await store.deleteService('acme', 'echo');
    expect(store.view.services('acme')).toEqual([]);
  });

  it('keeps deployments per service with compare-and-set', async () => {
    const store = await fixture.openStore();
    const record: DeploymentRecord = {
      schemaVersion: 1,
      id: 'd1',
      tenant: 'acme',
      service: 'echo',
      revision: 'green',
      previousRevision: 'blue',
      previousTraffic: [{ revision: 'blue', percent: 100 }],
      strategy: 'blue-green',
      steps: [100],
      bakeMs: 0,
      maxErrorRatio: 0.05,
      phase: 'scaling',
      stepIndex: -1,
      startedAt: 1,
      phaseSince: 1,
      message: '',
    };
    const first = await store.putDeployment(record, { ifAbsent: true });
    await expect(store.putDeployment({ ...record, phase: 'baking' }, { ifRevision: first + 1 })).rejects.toBeInstanceOf(RevisionConflict);
    await store.putDeployment({ ...record, phase: 'baking' }, { ifRevision: first });
    expect(store.view.deployment('acme', 'echo')?.record.phase).toBe('baking');
    await store.deleteDeployment('acme', 'echo');
    expect(store.view.deployments()).toEqual([]);
  });

  it('shows one replica the writes of another, with change notifications', async () => {
    const writer = await fixture.openStore();
    const reader = await fixture.openStore();
    const changes: ConfigChange[] = [];
    reader.view.onChange((change) => changes.push(change));
    await writer.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    const rev = await writer.putService(service('acme', 'echo', 'echo.acme.test'), { ifAbsent: true });
    await writer.deleteService('acme', 'echo', rev);
    await eventually(() =>
      expect(changes.map((c) => `${c.kind}:${c.current === undefined ? 'deleted' : 'put'}`)).toEqual([
        'tenant:put',
        'service:put',
        'service:deleted',
      ]),
    );
    expect(changes.every((c) => !c.initialLoad)).toBe(true);
    expect(contents(reader.view)).toEqual(contents(writer.view));
  });

  it('rebuilds the whole state before a new watcher is ready (control-plane restart)', async () => {
    const before = await fixture.openStore();
    for (let i = 0; i < 50; i++) {
      await before.putTenant(tenant(`t${i}`, [`t${i}.test`]), { ifAbsent: true });
      await before.putService(service(`t${i}`, 'web', `www.t${i}.test`), { ifAbsent: true });
    }
    await before.putToken('a'.repeat(64), { schemaVersion: 1, tenant: 't1', createdAt: 1 });
    const rev = await before.putService(service('t2', 'api', 'api.t2.test'), { ifAbsent: true });
    await before.deleteService('t2', 'api', rev);
    await before.putTenant(tenant('t3', ['t3.test', 't3.example']), { ifRevision: before.view.tenant('t3')?.revision ?? 0 });
    await before.close();

    const after = await fixture.openStore();
    // No waiting: open() resolves only once everything is loaded.
    expect(after.view.initialLoad).toBe(false);
    expect(contents(after.view)).toEqual(contents(before.view));
    expect(after.view.services()).toHaveLength(50);
    expect(after.view.tenant('t3')?.record.spec.domains).toEqual(['t3.test', 't3.example']);
  });

  it('is ready at once on an empty bucket', async () => {
    const store = await fixture.openStore();
    expect(store.view.initialLoad).toBe(false);
    expect(contents(store.view)).toEqual({ revision: 0, tenants: [], services: [], tokens: [], deployments: [] });
  });

  it.each(['restart', 'kill'] as const)('keeps following changes across a nats-server %s', async (how) => {
    const watcher = await fixture.openStore();
    const writer = await fixture.openStore();
    await writer.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    await eventually(() => expect(watcher.view.tenant('acme')).toBeDefined());

    if (how === 'kill') await fixture.server.kill();
    await fixture.server.restart();

    await untilConnected(writer.nc);
    await writer.putTenant(tenant('globex', ['globex.test']), { ifAbsent: true });
    await writer.putService(service('acme', 'echo', 'echo.acme.test'), { ifAbsent: true });
    await eventually(() => expect(contents(watcher.view)).toEqual(contents(writer.view)), 20_000);

    const fresh = await fixture.openStore();
    expect(contents(fresh.view)).toEqual(contents(watcher.view));
  });

  it('watches again after a reconnect, even when the server has dropped its consumer', async () => {
    const watcher = await fixture.openStore();
    const writer = await fixture.openStore();
    await writer.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    await eventually(() => expect(watcher.view.tenant('acme')).toBeDefined());
    // As after an outage longer than the consumer's inactivity threshold: the server forgot it.
    const jsm = await jetstreamManager(await fixture.connect());
    const stream = `KV_${buckets.config}`;
    for await (const consumer of jsm.consumers.list(stream)) await jsm.consumers.delete(stream, consumer.name);
    await watcher.nc.reconnect();
    const kv = await openBucket(await fixture.connect(), buckets.config);
    const revision = await kv.create('tenants.globex', JSON.stringify(tenant('globex', ['globex.test'])));
    // Well within the 60 s an ordered consumer takes to notice missed heartbeats on its own.
    await watcher.view.waitFor(revision, 5000);
    const fresh = await fixture.openStore();
    expect(contents(watcher.view)).toEqual(contents(fresh.view));
  });

  it('counts and skips records that fail their schema, keeping the last good one', async () => {
    const registry = new Registry();
    const store = await fixture.openStore(registry);
    await store.putTenant(tenant('acme', ['acme.test']), { ifAbsent: true });
    const kv = await openBucket(await fixture.connect(), buckets.config);
    await kv.put('tenants.acme', JSON.stringify({ schemaVersion: 1, name: 'acme', spec: { domains: 'nope' }, updatedAt: 1 }));
    const last = await kv.put('unknown.key', '{}');
    await store.view.waitFor(last, 5000);
    expect(store.view.tenant('acme')?.record.spec.domains).toEqual(['acme.test']);
    const metric = await registry.getSingleMetricAsString('switchyard_control_plane_config_rejected_total');
    expect(metric).toContain('outcome="invalid"} 1');
    expect(metric).toContain('outcome="ignored"} 1');
  });
});

export type { ConfigStore };
