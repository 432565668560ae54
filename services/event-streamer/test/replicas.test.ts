import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buckets,
  connectNats,
  createObservability,
  ensureStreams,
  openBucket,
  type HealthTransition,
  type NatsConnection,
} from '@switchyard/shared';
import { startHealthChecking, type HealthChecking } from '../src/health.js';
import { eventStreamerMetrics } from '../src/metrics.js';
import { HdsClient, type AssignedEndpoint } from '../src/testing/hds-client.js';
import { record } from './fixtures.js';
import { collect, eventually, logger, putService, startBus, startGrpc, type Bus } from './harness.js';

/**
 * Three event-streamer replicas sharing one Envoy fleet over a real nats-server, each with its
 * own NATS connection and HDS gRPC server; our HDS clients play the Envoys, spread over the
 * replicas. Real clock: heartbeats every 400 ms, a replica silent for 1.6 s is gone.
 */

interface Replica {
  id: string;
  nc: NatsConnection;
  grpc: Awaited<ReturnType<typeof startGrpc>>;
  health: HealthChecking;
}

const k = 3;
const endpoints = Array.from({ length: 12 }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 8080 }));
const cluster = 'sy_acme_api_blue';
const endpointId = (e: { address: string; port: number }) => `${e.address}:${e.port}`;

describe('event-streamer replicas sharing the fleet', () => {
  let bus: Bus;
  const replicas = new Map<string, Replica>();
  const envoys = new Map<string, { client: HdsClient; replica: string }>();
  let reporting: NodeJS.Timeout | undefined;
  let statusOf: (e: AssignedEndpoint) => 'HEALTHY' | 'UNHEALTHY' = () => 'HEALTHY';

  const startReplica = async (id: string): Promise<Replica> => {
    const observability = createObservability(`event-streamer-${id}`);
    const nc = await connectNats({ servers: bus.server.url, name: id, logger, observability });
    const { js } = await ensureStreams(nc);
    const members = await openBucket(nc, buckets.eventStreamers, { history: 1 });
    const server = await startGrpc(() => undefined);
    const health = await startHealthChecking({
      nc,
      js,
      grpcServer: server.server,
      logger,
      registry: observability.registry,
      metrics: eventStreamerMetrics(observability.registry),
      checkersPerEndpoint: k,
      reportIntervalMs: 1000,
      replication: { replica: id, heartbeatMs: 400, members },
    });
    await health.loaded;
    const replica = { id, nc, grpc: server, health };
    replicas.set(id, replica);
    return replica;
  };
  /** As a crash looks to the others: the connection drops first, so the heartbeat key stays until it ages out. */
  const crash = async (id: string) => {
    const replica = replicas.get(id) as Replica;
    replicas.delete(id);
    await replica.nc.close();
    await replica.grpc.stop();
    await replica.health.stop();
  };
  const connect = (node: string, replica: string) => {
    const address = (replicas.get(replica) as Replica).grpc.address;
    envoys.get(node)?.client.close();
    envoys.set(node, { client: new HdsClient(address, { nodeId: node }), replica });
  };
  const holders = (e: { address: string; port: number }) =>
    [...envoys]
      .filter(([, { client }]) => client.assigned.some((a) => a.cluster === cluster && a.address === e.address && a.port === e.port))
      .map(([node]) => node);
  const everyEndpointHeldByK = () => endpoints.every((e) => holders(e).length === k);

  beforeAll(async () => {
    bus = await startBus();
    await putService(
      bus.kv,
      record('acme', 'api', {
        revisions: [{ name: 'blue', endpoints }],
        healthCheck: { protocol: 'http', path: '/healthz', interval: '1s', timeout: '1s', gracePeriod: 0 },
      }),
    );
    for (const id of ['r1', 'r2', 'r3']) await startReplica(id);
    // Five Envoys: two on r1, two on r2, one on r3.
    connect('envoy-a', 'r1');
    connect('envoy-b', 'r1');
    connect('envoy-c', 'r2');
    connect('envoy-d', 'r2');
    connect('envoy-e', 'r3');
    // Every Envoy reports what it is assigned, as Envoy does every interval.
    reporting = setInterval(() => {
      for (const { client } of envoys.values()) if (client.status === undefined) client.reportAssigned(statusOf);
    }, 250);
  }, 60_000);

  afterAll(async () => {
    clearInterval(reporting);
    for (const { client } of envoys.values()) client.close();
    for (const replica of replicas.values()) {
      await replica.health.stop();
      await replica.grpc.stop();
      await replica.nc.close();
    }
    await bus?.close();
  });

  it('assigns each endpoint to k Envoys drawn from every replica’s Envoys, each replica serving its own', async () => {
    await eventually(everyEndpointHeldByK, 30_000, `every endpoint held by ${k} Envoys`);
    for (const replica of replicas.values()) expect(replica.health.replication?.replicas).toEqual(['r1', 'r2', 'r3']);
    const total = [...envoys.values()].reduce((sum, { client }) => sum + client.assigned.length, 0);
    expect(total).toBe(endpoints.length * k);
    // With five Envoys and k = 3 no replica's own Envoys could hold every endpoint: the union is what is assigned over.
    const spanning = endpoints.filter((e) => new Set(holders(e).map((node) => envoys.get(node)?.replica)).size > 1);
    expect(spanning.length).toBe(endpoints.length);
    // And each replica sent specifiers only over its own streams.
    for (const replica of replicas.values()) {
      const own = [...envoys].filter(([, e]) => e.replica === replica.id).map(([node]) => node);
      expect(replica.health.hds.nodes()).toEqual(own.sort());
    }
  }, 40_000);

  it('publishes one transition per change, not one per replica', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.>');
    await eventually(() => transitions.items.length >= endpoints.length, 30_000, 'every endpoint healthy');
    const ill = endpoints[4] as { address: string; port: number };
    statusOf = (e) => (e.address === ill.address ? 'UNHEALTHY' : 'HEALTHY');
    await eventually(() => transitions.items.some((t) => t.state === 'unhealthy'), 30_000, 'the failing endpoint reported unhealthy');
    // Reports keep arriving at every replica for a few more intervals: nothing more may be published.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    transitions.stop();
    const byEndpoint = groupBy(transitions.items);
    expect([...byEndpoint.keys()].sort()).toEqual(endpoints.map(endpointId).sort());
    for (const [id, list] of byEndpoint) {
      expect(list.map((t) => `${t.previous}→${t.state}`)).toEqual(
        id === endpointId(ill) ? ['unknown→healthy', 'healthy→unhealthy'] : ['unknown→healthy'],
      );
    }
    // The endpoints' votes were aggregated by more than one replica (each publishes only its own).
    const aggregators = new Set(endpoints.map((e) => replicas.get('r1')?.health.coordinator.aggregatorOf({ cluster, ...e })));
    expect(aggregators.size).toBeGreaterThan(1);
    statusOf = () => 'HEALTHY';
    await eventually(() => collectState(ill) === 'healthy', 30_000, 'the endpoint healthy again');
  }, 60_000);

  it('survives a replica crash: its Envoys reconnect to another, assignment and aggregation recover, no spurious transition', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.>');
    const orphaned = [...envoys].filter(([, e]) => e.replica === 'r1').map(([node]) => node);
    const aggregatorOf = (e: { address: string; port: number }) => replicas.get('r2')?.health.coordinator.aggregatorOf({ cluster, ...e });
    const aggregatedByR1 = endpoints.filter((e) => aggregatorOf(e) === 'r1');
    expect(aggregatedByR1.length).toBeGreaterThan(0);
    await crash('r1');
    // Their streams end as the server goes; like Envoy they reconnect, here to r2.
    await eventually(() => orphaned.every((node) => envoys.get(node)?.client.status !== undefined), 20_000, 'streams to r1 ended');
    for (const node of orphaned) connect(node, 'r2');
    await eventually(
      () => [...replicas.values()].every((r) => r.health.replication?.replicas.join() === 'r2,r3'),
      30_000,
      'r1 gone from every view',
    );
    await eventually(everyEndpointHeldByK, 30_000, `every endpoint held by ${k} Envoys again`);
    expect(replicas.get('r2')?.health.hds.nodes()).toEqual(['envoy-a', 'envoy-b', 'envoy-c', 'envoy-d']);
    // The endpoints r1 aggregated moved; their new aggregators keep them healthy, publishing nothing.
    for (const e of aggregatedByR1) expect(['r2', 'r3']).toContain(aggregatorOf(e));
    await new Promise((resolve) => setTimeout(resolve, 4000));
    transitions.stop();
    expect(transitions.items.map((t) => `${endpointId(t.endpoint)} ${t.previous}→${t.state}`)).toEqual([]);

    // A change after the crash is still published exactly once.
    const after = collect(bus, 'health', 'switchyard.health.>');
    const ill = endpoints[7] as { address: string; port: number };
    statusOf = (e) => (e.address === ill.address ? 'UNHEALTHY' : 'HEALTHY');
    await eventually(() => after.items.length > 0, 30_000, 'the failing endpoint reported');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    after.stop();
    expect(after.items.map((t) => `${endpointId(t.endpoint)} ${t.previous}→${t.state}`)).toEqual([`${endpointId(ill)} healthy→unhealthy`]);
  }, 120_000);

  /** The last state published for an endpoint, read back by a replica that follows the stream. */
  function collectState(e: { address: string; port: number }): string | undefined {
    const replica = [...replicas.values()][0] as Replica;
    return replica.health.coordinator.aggregator.stateOf(`${cluster}|${e.address}|${e.port}`);
  }
});

function groupBy(items: HealthTransition[]): Map<string, HealthTransition[]> {
  const byEndpoint = new Map<string, HealthTransition[]>();
  for (const t of items) {
    const id = endpointId(t.endpoint);
    byEndpoint.set(id, [...(byEndpoint.get(id) ?? []), t]);
  }
  return byEndpoint;
}
