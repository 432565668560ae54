import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publishDurable, type HealthTransition } from '@switchyard/shared';
import type { HealthChecking } from '../src/health.js';
import { HdsClient, type AssignedEndpoint } from '../src/testing/hds-client.js';
import { endpointSet, record } from './fixtures.js';
import { collect, eventually, metricValue, putService, startBus, startGrpc, startHealth, type Bus } from './harness.js';

/**
 * HDS end to end over real gRPC and a real nats-server: our HDS client plays the Envoys and
 * reports results itself; the clock that decides grace periods and staleness is the test's.
 */
describe('HDS health checking through the fleet', () => {
  let bus: Bus;
  let grpc: Awaited<ReturnType<typeof startGrpc>>;
  let health: HealthChecking;
  let clock = 1_000_000;
  const clients: HdsClient[] = [];
  const reportIntervalMs = 1000;

  const connect = (nodeId: string, protocols?: string[]) => {
    const client = new HdsClient(grpc.address, { nodeId, ...(protocols ? { protocols } : {}) });
    clients.push(client);
    return client;
  };
  const holders = (group: HdsClient[], cluster: string, address: string, port: number) =>
    group
      .filter((c) => c.assigned.some((e) => e.cluster === cluster && e.address === address && e.port === port))
      .map((c) => c.options.nodeId);

  beforeAll(async () => {
    bus = await startBus();
    // A transition published before this instance started: its state must be recovered.
    await publishDurable(bus.js, 'health', {
      schemaVersion: 1,
      tenant: 'recover',
      service: 'api',
      revision: 'blue',
      endpoint: { address: '10.9.0.1', port: 80 },
      state: 'unhealthy',
      previous: 'healthy',
      reason: 'before restart',
      votes: [],
      ts: 1,
    });
    await putService(
      bus.kv,
      record('acme', 'api', {
        revisions: [{ name: 'blue', endpoints: Array.from({ length: 12 }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 8080 })) }],
        healthCheck: { protocol: 'http', path: '/healthz', interval: '2s', timeout: '1s', gracePeriod: 0 },
      }),
    );
    grpc = await startGrpc(() => undefined);
    health = await startHealth(bus, grpc.server, { reportIntervalMs, now: () => clock });
    await health.loaded;
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await health?.stop();
    await grpc?.stop();
    await bus?.close();
  });

  it('assigns every endpoint to exactly k of the connected Envoys, with the service health check', async () => {
    const group = ['envoy-a', 'envoy-b', 'envoy-c', 'envoy-d', 'envoy-e'].map((id) => connect(id));
    const perEndpoint = () => Array.from({ length: 12 }, (_, i) => holders(group, 'sy_acme_api_blue', `10.0.0.${i + 1}`, 8080).length);
    await eventually(() => perEndpoint().every((n) => n === 3), 10_000, 'every endpoint held by 3 Envoys');
    const total = group.reduce((sum, c) => sum + c.assigned.length, 0);
    expect(total).toBe(36);
    const check = group.find((c) => c.checks.length > 0)?.checks[0];
    expect(check?.healthCheck).toMatchObject({
      interval: { seconds: '2' },
      timeout: { seconds: '1' },
      http_health_check: { path: '/healthz', host: 'api.acme.example.com' },
    });
    expect(group[0]?.reportIntervalMs).toBe(1000);
  });

  it('rebalances when an Envoy leaves: only its endpoints move, none is left with fewer than k', async () => {
    const group = ['envoy-a', 'envoy-b', 'envoy-c', 'envoy-d', 'envoy-e'].map((id) => connect(id));
    const endpoints = Array.from({ length: 12 }, (_, i) => `10.0.0.${i + 1}`);
    await eventually(() => endpoints.every((a) => holders(group, 'sy_acme_api_blue', a, 8080).length === 3));
    const before = new Map(endpoints.map((a) => [a, holders(group, 'sy_acme_api_blue', a, 8080)]));
    const leaving = group[1] as HdsClient;
    leaving.close();
    const rest = group.filter((c) => c !== leaving);
    await eventually(() => endpoints.every((a) => holders(rest, 'sy_acme_api_blue', a, 8080).length === 3), 10_000, 'rebalanced');
    for (const address of endpoints) {
      const was = before.get(address) as string[];
      const now = holders(rest, 'sy_acme_api_blue', address, 8080);
      if (!was.includes('envoy-b')) expect(now.sort()).toEqual([...was].sort());
      else expect(now.filter((id) => was.includes(id)).sort()).toEqual(was.filter((id) => id !== 'envoy-b').sort());
    }
    // Down to one Envoy: it checks everything.
    for (const client of rest.slice(1)) client.close();
    const last = rest[0] as HdsClient;
    await eventually(() => last.assigned.length === 12, 10_000, 'the last Envoy holds every endpoint');
  });

  it('publishes transitions, not reports: majority healthy, then unhealthy when two of three fail', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.acme.>');
    const group = ['envoy-a', 'envoy-b', 'envoy-c'].map((id) => connect(id));
    await eventually(() => group.every((c) => c.assigned.length === 12));
    for (const client of group) client.reportAssigned('HEALTHY');
    await eventually(() => transitions.items.length === 12, 10_000, '12 transitions to healthy');
    expect(transitions.items.every((t) => t.state === 'healthy' && t.previous !== 'healthy')).toBe(true);
    // The second healthy report of three decides.
    expect(transitions.items[0]?.votes).toHaveLength(2);

    clock += 500;
    const target: AssignedEndpoint = { cluster: 'sy_acme_api_blue', address: '10.0.0.5', port: 8080 };
    group[0]?.reportAssigned((e) => (e.address === target.address ? 'UNHEALTHY' : 'HEALTHY'));
    group[1]?.reportAssigned((e) => (e.address === target.address ? 'TIMEOUT' : 'HEALTHY'));
    group[2]?.reportAssigned('HEALTHY');
    const unhealthy = await eventually(() => transitions.items.find((t) => t.state === 'unhealthy'), 10_000, 'unhealthy transition');
    expect(unhealthy).toMatchObject({
      tenant: 'acme',
      service: 'api',
      revision: 'blue',
      endpoint: { address: '10.0.0.5', port: 8080 },
      previous: 'healthy',
      reason: '2 of 3 checkers report unhealthy',
    });
    expect(unhealthy.votes.map((v) => `${v.checker}:${v.state}`).sort()).toEqual([
      'envoy-a:unhealthy',
      'envoy-b:unhealthy',
      'envoy-c:healthy',
    ]);
    await health.publisher.idle();
    // The same reports again change nothing.
    for (const client of group) client.reportAssigned((e) => (e.address === target.address ? 'UNHEALTHY' : 'HEALTHY'));
    const accepted = await metricValue(bus, 'switchyard_event_streamer_hds_results_total', { outcome: 'accepted' });
    await eventually(
      async () => (await metricValue(bus, 'switchyard_event_streamer_hds_results_total', { outcome: 'accepted' })) >= accepted + 36,
    );
    await health.publisher.idle();
    expect(transitions.items).toHaveLength(13);
    transitions.stop();
  });

  it('ignores failing checks during the grace period after an instance starts', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.grace.>');
    const startedAt = clock;
    await putService(bus.kv, record('grace', 'web', { healthCheck: { protocol: 'tcp', gracePeriod: '30s' } }));
    await publishDurable(
      bus.js,
      'endpoints',
      endpointSet({ tenant: 'grace', service: 'web', revision: 'blue' }, 1, [{ address: '10.1.0.1', port: 9000, startedAt }]),
    );
    const group = ['envoy-a', 'envoy-b', 'envoy-c'].map((id) => connect(id));
    await eventually(
      () => group.every((c) => c.assigned.some((e) => e.cluster === 'sy_grace_web_blue')),
      10_000,
      'grace endpoint assigned',
    );
    const failing = () =>
      group.forEach((c) => c.report([{ cluster: 'sy_grace_web_blue', address: '10.1.0.1', port: 9000, status: 'UNHEALTHY' }]));
    const accepted = () => metricValue(bus, 'switchyard_event_streamer_hds_results_total', { outcome: 'accepted' });

    clock = startedAt + 29_000;
    let before = await accepted();
    failing();
    await eventually(async () => (await accepted()) >= before + 3, 10_000, 'results ingested during grace');
    await health.publisher.idle();
    expect(transitions.items).toEqual([]);

    clock = startedAt + 30_000;
    before = await accepted();
    failing();
    const [transition] = await eventually(
      () => (transitions.items.length > 0 ? transitions.items : undefined),
      10_000,
      'transition after grace',
    );
    expect(transition).toMatchObject({ state: 'unhealthy', previous: 'unknown', ts: startedAt + 30_000, endpoint: { id: 'i-0' } });
    transitions.stop();
  });

  it('takes over the published state after a restart', async () => {
    const transitions = collect(bus, 'health', 'switchyard.health.recover.>');
    await putService(
      bus.kv,
      record('recover', 'api', {
        revisions: [{ name: 'blue', endpoints: [{ address: '10.9.0.1', port: 80 }] }],
        healthCheck: { gracePeriod: 0 },
      }),
    );
    const client = connect('envoy-a');
    await eventually(() => client.assigned.some((e) => e.cluster === 'sy_recover_api_blue'));
    client.report([{ cluster: 'sy_recover_api_blue', address: '10.9.0.1', port: 80, status: 'HEALTHY' }]);
    const [transition] = await eventually(() => (transitions.items.length > 0 ? transitions.items : undefined));
    expect(transition).toMatchObject<Partial<HealthTransition>>({ state: 'healthy', previous: 'unhealthy' });
    transitions.stop();
  });

  it('follows endpoint sets and service deletion', async () => {
    await putService(bus.kv, record('moving', 'api'));
    const client = connect('envoy-a');
    const ref = { tenant: 'moving', service: 'api', revision: 'blue' };
    await publishDurable(bus.js, 'endpoints', endpointSet(ref, 1, [{ address: '10.2.0.1', port: 80 }]));
    await eventually(() => client.assigned.filter((e) => e.cluster === 'sy_moving_api_blue').length === 1);
    await publishDurable(
      bus.js,
      'endpoints',
      endpointSet(ref, 2, [
        { address: '10.2.0.1', port: 80 },
        { address: '10.2.0.2', port: 80 },
      ]),
    );
    await eventually(() => client.assigned.filter((e) => e.cluster === 'sy_moving_api_blue').length === 2);
    // An older generation arriving late changes nothing.
    await publishDurable(bus.js, 'endpoints', endpointSet(ref, 1, [{ address: '10.2.0.9', port: 80 }]));
    await bus.kv.delete('services.moving.api');
    await eventually(() => !client.assigned.some((e) => e.cluster === 'sy_moving_api_blue'), 10_000, 'service removed');
  });

  it('counts and drops bad input without ending healthy streams', async () => {
    const dropped = (reason: string) => metricValue(bus, 'switchyard_event_streamer_hds_messages_dropped_total', { reason });
    const results = (outcome: string) => metricValue(bus, 'switchyard_event_streamer_hds_results_total', { outcome });
    const group = ['envoy-a', 'envoy-b', 'envoy-c', 'envoy-d'].map((id) => connect(id));
    await eventually(() =>
      Array.from({ length: 12 }, (_, i) => holders(group, 'sy_acme_api_blue', `10.0.0.${i + 1}`, 8080).length).every((n) => n === 3),
    );
    const outsider = group.find((c) => !c.assigned.some((e) => e.address === '10.0.0.1')) as HdsClient;
    const base = {
      notAssigned: await results('not_assigned'),
      unknownCluster: await results('unknown_cluster'),
      unknownEndpoint: await results('unknown_endpoint'),
      badStatus: await results('bad_status'),
      malformed: await results('malformed'),
    };
    outsider.report([{ cluster: 'sy_acme_api_blue', address: '10.0.0.1', port: 8080, status: 'UNHEALTHY' }]);
    outsider.report([{ cluster: 'sy_nobody_x_y', address: '10.0.0.1', port: 1, status: 'UNHEALTHY' }]);
    outsider.report([{ cluster: 'sy_acme_api_blue', address: '10.99.0.1', port: 8080, status: 'UNHEALTHY' }]);
    outsider.send({
      endpoint_health_response: {
        cluster_endpoints_health: [
          { cluster_name: 'sy_acme_api_blue', locality_endpoints_health: [{ endpoints_health: [{ health_status: 'HEALTHY' }] }] },
        ],
      },
    });
    await eventually(async () => (await results('not_assigned')) === base.notAssigned + 1, 10_000, 'not_assigned counted');
    await eventually(async () => (await results('unknown_cluster')) === base.unknownCluster + 1, 10_000, 'unknown_cluster counted');
    await eventually(async () => (await results('unknown_endpoint')) === base.unknownEndpoint + 1, 10_000, 'unknown_endpoint counted');
    await eventually(async () => (await results('malformed')) === base.malformed + 1, 10_000, 'malformed counted');

    const early = new HdsClient(grpc.address, { nodeId: '' });
    clients.push(early);
    await eventually(() => early.status, 10_000, 'stream without node id ended');
    expect(early.status?.code).toBe(3); // INVALID_ARGUMENT
    expect(await dropped('no_node_id')).toBeGreaterThanOrEqual(1);
    // The other streams still work.
    const accepted = await results('accepted');
    outsider.reportAssigned('HEALTHY');
    await eventually(async () => (await results('accepted')) > accepted);
    expect(health.hds.connected).toBe(4);
  });
});
