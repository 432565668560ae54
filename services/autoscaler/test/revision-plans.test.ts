import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buckets,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  openBucket,
  type KV,
  type NatsConnection,
  untilConnected,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { revisionPlans, watchServices, type ServiceChange } from '../src/revision-plans.js';
import { LoadGate } from '../src/load-gate.js';
import { serviceRecordFor, until } from './helpers.js';

const logger = createLogger('desired-state-test', 'silent');

describe('revision plans', () => {
  const cases: { label: string; record: ReturnType<typeof serviceRecordFor>; want: Record<string, { kind: string; percent: number }> }[] = [
    {
      label: 'a single revision without a split gets all traffic',
      record: serviceRecordFor('acme', 'one', { domains: ['one.example.com'], revisions: [{ name: 'v1', command: 'run' }] }),
      want: { v1: { kind: 'command', percent: 100 } },
    },
    {
      label: 'revisions missing from the split or at 0 % get no traffic',
      record: serviceRecordFor('acme', 'split', {
        domains: ['split.example.com'],
        revisions: [
          { name: 'blue', command: ['node', 'a.js'] },
          { name: 'green', image: 'registry.example.com/app:2' },
          { name: 'red', endpoints: [{ address: '10.0.0.1', port: 80 }] },
        ],
        traffic: [
          { revision: 'blue', percent: 100 },
          { revision: 'green', percent: 0 },
        ],
      }),
      want: { blue: { kind: 'command', percent: 100 }, green: { kind: 'image', percent: 0 }, red: { kind: 'static', percent: 0 } },
    },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const plans = revisionPlans(c.record);
      expect(Object.fromEntries(plans.map((p) => [p.ref.revision, { kind: p.source.kind, percent: p.trafficPercent }]))).toEqual(c.want);
      for (const plan of plans) {
        expect(plan.ref).toMatchObject({ tenant: c.record.tenant, service: c.record.name });
        expect(plan.scaling).toEqual(c.record.spec.scaling);
        expect(plan.healthCheck).toEqual(c.record.spec.healthCheck);
      }
    });
  }

  it('carries the command and env of a command revision', () => {
    const [plan] = revisionPlans(
      serviceRecordFor('acme', 'env', { domains: ['env.example.com'], revisions: [{ name: 'v1', command: ['x'], env: { A: '1' } }] }),
    );
    expect(plan?.source).toEqual({ kind: 'command', command: ['x'], env: { A: '1' } });
  });

  it.each([
    { phase: 'scaling' as const, want: { blue: true, green: true, old: false } },
    { phase: 'baking' as const, want: { blue: true, green: true, old: false } },
    { phase: 'completed' as const, want: { blue: false, green: false, old: false } },
    { phase: 'rolled_back' as const, want: { blue: false, green: false, old: false } },
  ])('keeps both revisions of a deployment that is $phase running', ({ phase, want }) => {
    const record = serviceRecordFor('acme', 'deploy', {
      domains: ['deploy.example.com'],
      revisions: [
        { name: 'blue', command: 'run' },
        { name: 'green', command: 'run' },
        { name: 'old', command: 'run' },
      ],
      traffic: [
        { revision: 'blue', percent: 100 },
        { revision: 'green', percent: 0 },
        { revision: 'old', percent: 0 },
      ],
    });
    const deployment = {
      schemaVersion: 1 as const,
      id: 'd',
      tenant: 'acme',
      service: 'deploy',
      revision: 'green',
      previousRevision: 'blue',
      previousTraffic: [{ revision: 'blue', percent: 100 }],
      strategy: 'blue-green' as const,
      steps: [100],
      bakeMs: 0,
      maxErrorRatio: 0.05,
      phase,
      stepIndex: -1,
      startedAt: 0,
      phaseSince: 0,
      message: '',
    };
    const plans = revisionPlans(record, deployment);
    expect(Object.fromEntries(plans.map((p) => [p.ref.revision, p.deploying]))).toEqual(want);
  });
});

describe('load gate', () => {
  it('accepts growing timestamps per revision and drops repeats, older ones and ones from the future', () => {
    const gate = new LoadGate(2000);
    const now = 1_000_000;
    expect(gate.admit('a', now - 5000, now)).toBe('accepted');
    expect(gate.admit('a', now - 5000, now)).toBe('out_of_order');
    expect(gate.admit('a', now - 6000, now)).toBe('out_of_order');
    expect(gate.admit('b', now - 6000, now)).toBe('accepted');
    expect(gate.admit('a', now + 2000, now)).toBe('accepted');
    expect(gate.admit('a', now + 2002, now)).toBe('from_future');
    gate.forget('a');
    expect(gate.admit('a', now - 9000, now)).toBe('accepted');
  });
});

describe('watching the config bucket', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'watch-test', logger, observability: createObservability('watch') });
    kv = await openBucket(nc, buckets.config);
  });
  afterAll(async () => {
    await nc.close();
    await server.dispose();
  });

  const record = (service: string, revision: string) =>
    JSON.stringify(
      serviceRecordFor('acme', service, { domains: [`${service}.example.com`], revisions: [{ name: revision, command: 'run' }] }),
    );

  it('loads every service before resolving, then follows updates, deletions and skips invalid records', async () => {
    await kv.put(configKeys.service('acme', 'a'), record('a', 'v1'));
    await kv.put(configKeys.service('acme', 'b'), record('b', 'v1'));
    await kv.put(configKeys.service('acme', 'a'), record('a', 'v2'));
    await kv.put(configKeys.tenant('acme'), JSON.stringify({ not: 'a service' }));
    const changes: ServiceChange[] = [];
    const invalid: string[] = [];
    const watch = await watchServices(
      nc,
      logger,
      (c) => changes.push(c),
      (key) => invalid.push(key),
    );
    // Loaded before the watch resolved: the latest record of each service, once.
    expect(changes.map((c) => [c.service, c.record?.spec.revisions[0]?.name]).sort()).toEqual([
      ['a', 'v2'],
      ['b', 'v1'],
    ]);
    await kv.put(configKeys.service('acme', 'c'), record('c', 'v1'));
    await kv.put(configKeys.service('acme', 'b'), '{"schemaVersion": 1, "broken": true}');
    await kv.delete(configKeys.service('acme', 'a'));
    await until(() => changes.length === 4);
    expect(changes.slice(2).map((c) => [c.service, c.record === null ? 'deleted' : c.record.spec.revisions[0]?.name])).toEqual([
      ['c', 'v1'],
      ['a', 'deleted'],
    ]);
    expect(invalid).toEqual([configKeys.service('acme', 'b')]);
    await watch.stop();
  });

  it.each(['restart', 'kill'] as const)('keeps following the bucket across a nats-server %s', async (how) => {
    const changes: ServiceChange[] = [];
    const watch = await watchServices(
      nc,
      logger,
      (c) => changes.push(c),
      () => undefined,
    );
    const before = changes.length;
    // The restarted server has lost the watch's ephemeral consumer, as when the node that held it is replaced.
    if (how === 'kill') await server.kill();
    else await server.stop();
    await rm(join(server.storeDir, 'js', 'jetstream', '$G', 'streams', `KV_${buckets.config}`, 'obs'), { recursive: true, force: true });
    await server.restart();
    await untilConnected(nc);
    await until(
      async () => {
        await kv.put(configKeys.service('acme', `after-${how}`), record(`after-${how}`, 'v1')).catch(() => undefined);
        return changes.slice(before).some((c) => c.service === `after-${how}`);
      },
      20_000,
      'the change made after the restart',
    );
    await watch.stop();
  });
});
