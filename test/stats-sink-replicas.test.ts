import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { connectNats, createLogger, createObservability, subscribe, type LoadSample, type NatsConnection } from '@switchyard/shared';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, eventually, startStack, statsSink, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

/**
 * Two stats-sink replicas (two hosts, as two pods would be), each with one client reporting
 * load to it: `switchyard.load` carries the fleet's total, never one replica's part, and a
 * replica that dies stops counting within its partials' freshness.
 */
describe('stats-sink replicas merge their partials', () => {
  let nats: NatsServer;
  const stacks: Stack[] = [];
  let backend: Awaited<ReturnType<typeof startGrpcEcho>>;
  let nc: NatsConnection;
  const samples: LoadSample[] = [];
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    backend = await startGrpcEcho(0, { revision: 'v1', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    for (const replica of ['a', 'b']) {
      const env = {
        LOAD_REPORTING_INTERVAL_MS: '200',
        STATS_STALE_AFTER_MS: '1000',
        STATS_SINK_REPLICATED: 'true',
        STATS_SINK_REPLICA_ID: replica,
      };
      stacks.push(await startStack(nats, [controlPlane, statsSink], { env }));
    }
    const api = new Api(stacks[0]!.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/held', {
      domains: ['held.acme.test'],
      protocol: 'grpc',
      revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: backend.port }] }],
    });
    const logger = createLogger('test', 'silent');
    const observability = createObservability('test');
    nc = await connectNats({ servers: nats.url, name: 'load-subscriber', logger, observability });
    subscribe(nc, 'load', 'switchyard.load.acme.held.*', { logger, registry: observability.registry }, (m) => {
      samples.push(m.payload);
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await nc?.close();
    for (const stack of stacks) await stack.stop();
    await backend?.close();
    await nats?.dispose();
  });

  it('publishes 3 + 4 = 7 from two replicas, and 3 once the second replica is gone', async () => {
    const first = xdsEchoClient('held.acme.test', stacks[0]!.grpcPort, 'replica-client-a');
    const second = xdsEchoClient('held.acme.test', stacks[1]!.grpcPort, 'replica-client-b');
    clients.push(first, second);
    await first.say();
    await second.say();
    const held = [
      ...Array.from({ length: 3 }, () => first.say(8000)),
      ...Array.from({ length: 4 }, () => second.say(8000).catch(() => undefined)),
    ];
    const total = await eventually(() => samples.findLast((s) => s.revision === 'v1' && s.concurrency === 7) ?? false, 10_000);
    expect(total).toMatchObject({ nodes: 2 });
    // Once both report, no sample carries one replica's part alone.
    await new Promise((r) => setTimeout(r, 1000));
    const after = samples.filter((s) => s.ts > total.ts && s.revision === 'v1');
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((s) => s.concurrency === 7)).toBe(true);

    const stoppedAt = Date.now();
    await stacks[1]!.stop();
    const alone = await eventually(
      () => samples.findLast((s) => s.revision === 'v1' && s.ts > stoppedAt && s.concurrency === 3) ?? false,
      10_000,
    );
    console.log(`the dead replica's share stopped counting ${alone.ts - stoppedAt} ms after it stopped`);
    await Promise.all(held);
  });
});
