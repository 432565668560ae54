import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buckets, connectNats, createLogger, createObservability, openBucket, type NatsConnection } from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { LeaderLease } from '../src/lease.js';
import { until } from './helpers.js';

const logger = createLogger('lease-test', 'silent');

describe('leader lease on a real nats-server', () => {
  let server: NatsServer;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await server.dispose();
  });

  async function replica(name: string, key: string, ttlMs: number) {
    const nc = await connectNats({ servers: server.url, name, logger, observability: createObservability(name) });
    connections.push(nc);
    const kv = await openBucket(nc, buckets.leases);
    const transitions: { leader: boolean; at: number }[] = [];
    const lease = new LeaderLease({
      kv,
      key,
      holder: name,
      ttlMs,
      logger,
      onChange: (leader) => transitions.push({ leader, at: Date.now() }),
    });
    lease.start();
    return { nc, kv, lease, transitions };
  }

  it('lets exactly one of two replicas lead, and the other take over within the TTL when the leader dies', async () => {
    const ttlMs = 1500;
    const a = await replica('replica-a', 'crash-test', ttlMs);
    await until(() => a.lease.isLeader, 5000, 'a to lead');
    const b = await replica('replica-b', 'crash-test', ttlMs);
    // b keeps polling, but a keeps renewing: b never leads while a lives.
    await new Promise((resolve) => setTimeout(resolve, 2 * ttlMs));
    expect(b.lease.isLeader).toBe(false);
    expect(a.lease.isLeader).toBe(true);

    // a dies: its connection drops without releasing anything.
    const diedAt = Date.now();
    await a.nc.close();
    await until(() => b.lease.isLeader, 10_000, 'b to take over');
    const takeover = Date.now() - diedAt;
    expect(takeover).toBeLessThan(ttlMs + 2 * (ttlMs / 5) + 1000);
    // The dead leader steps down on its own before b could take over.
    await until(() => !a.lease.isLeader, 5000, 'a to step down');
    expect(a.transitions.at(-1)!.at).toBeLessThanOrEqual(b.transitions[0]!.at);
    await a.lease.stop();
    await b.lease.stop();
  });

  it('hands over at once when the leader stops gracefully', async () => {
    const ttlMs = 5000;
    const a = await replica('graceful-a', 'graceful-test', ttlMs);
    await until(() => a.lease.isLeader, 5000, 'a to lead');
    const b = await replica('graceful-b', 'graceful-test', ttlMs);
    const stoppedAt = Date.now();
    await a.lease.stop();
    expect(a.lease.isLeader).toBe(false);
    await until(() => b.lease.isLeader, 5000, 'b to take over');
    // Well under the TTL: the released key is free at b's next poll.
    expect(Date.now() - stoppedAt).toBeLessThan(ttlMs / 2);
    await b.lease.stop();
  });

  it('steps down when another writer replaces its lease (compare-and-set fails)', async () => {
    const a = await replica('cas-a', 'cas-test', 1500);
    await until(() => a.lease.isLeader, 5000, 'a to lead');
    const entry = await a.kv.get('cas-test');
    await a.kv.update('cas-test', JSON.stringify({ holder: 'intruder', renewedAt: Date.now() + 60_000, ttlMs: 60_000 }), entry!.revision);
    await until(() => !a.lease.isLeader, 5000, 'a to step down');
    expect(a.transitions.map((t) => t.leader)).toEqual([true, false]);
    await a.lease.stop();
  });
});
