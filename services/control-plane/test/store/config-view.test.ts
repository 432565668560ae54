import { describe, expect, it } from 'vitest';
import { serviceSpec } from '@switchyard/shared';
import { ConfigView, type ConfigChange, type ConfigEntry } from '../../src/store/config-view.js';

const encoder = new TextEncoder();
const spec = serviceSpec.parse({
  domains: ['echo.acme.test'],
  revisions: [{ name: 'blue', endpoints: [{ address: '10.0.0.1', port: 80 }] }],
});

function put(key: string, revision: number, value: unknown): ConfigEntry {
  return { key, operation: 'PUT', revision, value: encoder.encode(typeof value === 'string' ? value : JSON.stringify(value)) };
}
function del(key: string, revision: number): ConfigEntry {
  return { key, operation: 'DEL', revision, value: new Uint8Array() };
}
const tenant = (name: string, domains: string[]) => ({ schemaVersion: 1, name, spec: { domains }, updatedAt: 1 });
const service = (tenantName: string, name: string) => ({ schemaVersion: 1, tenant: tenantName, name, spec, updatedAt: 1 });
const deployment = (tenantName: string, serviceName: string) => ({
  schemaVersion: 1,
  id: 'd1',
  tenant: tenantName,
  service: serviceName,
  revision: 'green',
  previousRevision: 'blue',
  previousTraffic: [{ revision: 'blue', percent: 100 }],
  strategy: 'canary',
  steps: [10, 100],
  bakeMs: 1000,
  maxErrorRatio: 0.05,
  phase: 'scaling',
  stepIndex: -1,
  startedAt: 1,
  phaseSince: 1,
  message: 'scaling green',
});

describe('ConfigView.apply', () => {
  const cases: { label: string; entries: ConfigEntry[]; outcome: string; check?: (view: ConfigView) => void }[] = [
    {
      label: 'a tenant',
      entries: [put('tenants.acme', 1, tenant('acme', ['acme.test']))],
      outcome: 'applied',
      check: (view) => expect(view.tenant('acme')).toMatchObject({ revision: 1, record: { spec: { domains: ['acme.test'] } } }),
    },
    {
      label: 'a service',
      entries: [put('services.acme.echo', 1, service('acme', 'echo'))],
      outcome: 'applied',
      check: (view) => expect(view.services('acme').map((s) => s.record.name)).toEqual(['echo']),
    },
    {
      label: 'a token',
      entries: [put('tokens.abc', 1, { schemaVersion: 1, tenant: 'acme', createdAt: 1 })],
      outcome: 'applied',
      check: (view) => expect(view.token('abc')).toMatchObject({ hash: 'abc', record: { tenant: 'acme' } }),
    },
    {
      label: 'a delete of a service',
      entries: [put('services.acme.echo', 1, service('acme', 'echo')), del('services.acme.echo', 2)],
      outcome: 'applied',
      check: (view) => expect(view.services()).toEqual([]),
    },
    {
      label: 'a deployment',
      entries: [put('deployments.acme.echo', 1, deployment('acme', 'echo'))],
      outcome: 'applied',
      check: (view) => {
        expect(view.deployment('acme', 'echo')).toMatchObject({ revision: 1, record: { revision: 'green', phase: 'scaling' } });
        expect(view.deployments('acme')).toHaveLength(1);
      },
    },
    {
      label: 'a delete of a deployment',
      entries: [put('deployments.acme.echo', 1, deployment('acme', 'echo')), del('deployments.acme.echo', 2)],
      outcome: 'applied',
      check: (view) => expect(view.deployments()).toEqual([]),
    },
    {
      label: 'a deployment stored under another service',
      entries: [put('deployments.acme.web', 1, deployment('acme', 'echo'))],
      outcome: 'invalid',
    },
    { label: 'a delete of something never seen', entries: [del('services.acme.echo', 3)], outcome: 'unchanged' },
    {
      label: 'a replayed older revision',
      entries: [put('tenants.acme', 5, tenant('acme', ['acme.test'])), put('tenants.acme', 4, tenant('acme', ['old.test']))],
      outcome: 'stale',
      check: (view) => expect(view.tenant('acme')?.record.spec.domains).toEqual(['acme.test']),
    },
    { label: 'a key outside the layout', entries: [put('other.thing', 1, {})], outcome: 'ignored' },
    { label: 'a value that is not JSON', entries: [put('tenants.acme', 1, '{nope')], outcome: 'invalid' },
    {
      label: 'a record failing its schema keeps the last good one',
      entries: [put('tenants.acme', 1, tenant('acme', ['acme.test'])), put('tenants.acme', 2, { ...tenant('acme', ['*.bad']) })],
      outcome: 'invalid',
      check: (view) => expect(view.tenant('acme')).toMatchObject({ revision: 1 }),
    },
    { label: 'a record stored under another name', entries: [put('services.acme.echo', 1, service('acme', 'other'))], outcome: 'invalid' },
  ];
  it.each(cases)('$label → $outcome', ({ entries, outcome, check }) => {
    const view = new ConfigView();
    const outcomes = entries.map((entry) => view.apply(entry).outcome);
    expect(outcomes.at(-1)).toBe(outcome);
    check?.(view);
  });

  it('advances its revision past entries it cannot use, so they are not retried', () => {
    const view = new ConfigView();
    view.apply(put('tenants.acme', 7, '{nope'));
    expect(view.revision).toBe(7);
  });

  it('notifies listeners after the change is visible, with the previous record', () => {
    const view = new ConfigView();
    const seen: { change: ConfigChange; visible: boolean }[] = [];
    view.onChange((change) => seen.push({ change, visible: view.tenant('acme')?.revision === change.revision }));
    view.apply(put('tenants.acme', 1, tenant('acme', ['a.test'])));
    view.markLoaded();
    view.apply(put('tenants.acme', 2, tenant('acme', ['b.test'])));
    expect(seen.map((s) => s.visible)).toEqual([true, true]);
    expect(seen[0]?.change).toMatchObject({ kind: 'tenant', initialLoad: true, previous: undefined });
    expect(seen[1]?.change).toMatchObject({
      kind: 'tenant',
      initialLoad: false,
      previous: { spec: { domains: ['a.test'] } },
      current: { spec: { domains: ['b.test'] } },
    });
  });

  it('keeps notifying when a listener throws', () => {
    const errors: unknown[] = [];
    const view = new ConfigView((err) => errors.push(err));
    let calls = 0;
    view.onChange(() => {
      throw new Error('boom');
    });
    view.onChange(() => calls++);
    view.apply(put('tenants.acme', 1, tenant('acme', ['a.test'])));
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('resolves waiters once their revision is applied and times out otherwise', async () => {
    const view = new ConfigView();
    const waiting = view.waitFor(2, 5000);
    view.apply(put('tenants.a', 1, tenant('a', ['a.test'])));
    view.apply(put('tenants.b', 2, tenant('b', ['b.test'])));
    await expect(waiting).resolves.toBeUndefined();
    await expect(view.waitFor(3, 10)).rejects.toThrow(/revision 3/);
  });
});
