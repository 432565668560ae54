import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvoyProcess } from '@switchyard/local';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, type EnvoyWorld } from './support.js';
import { BusRecorder, controlPlane, eventStreamer, eventually, fastEnv } from '../support/stack.js';

/** Checkers per endpoint: fewer than the three Envoys, so "k per endpoint" and "one per Envoy" differ. */
const k = 2;
const intervalMs = 500;

interface HealthChecks {
  checkersPerEndpoint: number;
  endpoints: number;
  unassigned: number;
  envoys: { node: string; endpoints: number }[];
}

/** Each lb_endpoint of `cluster` in an Envoy's EDS: port → health_status (absent = UNKNOWN). */
async function edsHealth(envoy: EnvoyProcess, cluster: string): Promise<Map<number, string>> {
  const dump = await envoy.configDump(true);
  const endpoints = dump.configs.find((c) => c['@type'].endsWith('EndpointsConfigDump')) as
    { dynamic_endpoint_configs?: { endpoint_config: { cluster_name: string; endpoints?: { lb_endpoints?: any[] }[] } }[] } | undefined;
  const config = endpoints?.dynamic_endpoint_configs?.find((e) => e.endpoint_config.cluster_name === cluster)?.endpoint_config;
  const health = new Map<number, string>();
  for (const locality of config?.endpoints ?? []) {
    for (const lb of locality.lb_endpoints ?? []) health.set(lb.endpoint.address.socket_address.port_value, lb.health_status ?? 'UNKNOWN');
  }
  return health;
}

/**
 * Issue 10's health loop through real Envoys: three Envoy processes (own node ids and admin
 * ports) on HDS; the event-streamer assigns each endpoint to k of them; they really probe the
 * backends; a backend broken on purpose is voted unhealthy, EDS marks it in every Envoy, and
 * Envoy stops sending it traffic.
 */
describe('HDS with three real Envoys', () => {
  let world: EnvoyWorld;
  let bus: BusRecorder;
  const envoys: EnvoyProcess[] = [];
  const backends: TestBackend[] = [];

  const healthChecks = async () => (await (await fetch(`${world.stack.adminUrl}/v1/health-checks`)).json()) as HealthChecks;

  beforeAll(async () => {
    for (const name of ['a', 'b', 'c']) backends.push(await TestBackend.start(name));
    world = await startEnvoyWorld({
      services: [controlPlane, eventStreamer],
      env: { ...fastEnv, HDS_CHECKERS_PER_ENDPOINT: String(k), HDS_REPORT_INTERVAL_MS: '300' },
    });
    envoys.push(world.envoy, await world.addEnvoy({ nodeId: 'hds-envoy-2' }), await world.addEnvoy({ nodeId: 'hds-envoy-3' }));
    bus = await BusRecorder.connect(world.nats);
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      healthCheck: {
        protocol: 'http',
        path: '/healthz',
        interval: `${intervalMs}ms`,
        timeout: '400ms',
        unhealthyThreshold: 2,
        gracePeriod: '0s',
      },
      revisions: [{ name: 'v1', endpoints: backends.map((b) => b.endpoint) }],
    });
  }, 40_000);

  afterAll(async () => {
    await bus?.close();
    await world?.stop();
    for (const backend of backends) await backend.stop();
  });

  it('assigns each endpoint to k of the three Envoys, and they really probe: k probes per endpoint per interval', async () => {
    expect(new Set(envoys.map((e) => e.adminUrl)).size).toBe(3);
    let lastSeen: HealthChecks | undefined;
    const assigned = await eventually(
      async () => {
        const checks = (lastSeen = await healthChecks());
        const ours = checks.envoys.filter((e) => envoys.some((envoy) => envoy.nodeId === e.node));
        return ours.length === 3 && ours.every((e) => e.endpoints > 0) && checks.unassigned === 0 ? checks : false;
      },
      30_000,
      100,
    ).catch((err: unknown) => {
      throw new Error(`HDS assignment never covered the three Envoys; last seen ${JSON.stringify(lastSeen)}`, { cause: err });
    });
    expect(assigned.endpoints).toBe(3);
    expect(assigned.envoys.reduce((sum, e) => sum + e.endpoints, 0)).toBe(3 * k);
    // Probes counted at the backends over a few seconds once every Envoy checks.
    await eventually(() => backends.every((b) => b.count('/healthz') > 2 * k), 10_000, 100);
    const start = backends.map((b) => b.count('/healthz'));
    const startedAt = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    const elapsed = Date.now() - startedAt;
    const probes = backends.map((b, i) => b.count('/healthz') - start[i]!);
    const perEndpoint = (k * elapsed) / intervalMs;
    const perEnvoy = (envoys.length * elapsed) / intervalMs;
    console.log(JSON.stringify({ probes, expectedPerEndpoint: perEndpoint, oneEveryEnvoyWouldBe: perEnvoy }));
    for (const count of probes) {
      expect(count).toBeGreaterThanOrEqual(Math.floor(perEndpoint * 0.6));
      expect(count).toBeLessThan(Math.floor((perEndpoint + perEnvoy) / 2));
    }
    // Its own waits add up to 44 s: the test may take that long, so a slow assignment fails with what was last seen.
  }, 60_000);

  it('a backend broken on purpose becomes unhealthy, EDS marks it in every Envoy, and Envoy stops sending it traffic', async () => {
    const transitions = bus.record('health', 'switchyard.health.acme.web.v1');
    // All three take traffic first.
    await eventually(
      async () => {
        const seen = new Set(
          (await Promise.all(Array.from({ length: 30 }, () => world.http('web.acme.test', '/')))).map((a) => echoOf(a).backend),
        );
        return seen.size === 3;
      },
      10_000,
      100,
    );
    const [, broken] = backends as [TestBackend, TestBackend, TestBackend];
    broken.failHealth = true;
    const brokenAt = Date.now();
    const unhealthy = await eventually(
      () => transitions.find((t) => t.endpoint.port === broken.port && t.state === 'unhealthy') ?? false,
      10_000,
      50,
    );
    expect(unhealthy.votes.filter((v) => v.state === 'unhealthy').length).toBe(k);
    for (const envoy of envoys) {
      await eventually(async () => (await edsHealth(envoy, 'sy_acme_web_v1')).get(broken.port) === 'UNHEALTHY', 5000, 50);
      const health = await edsHealth(envoy, 'sy_acme_web_v1');
      expect([...health.entries()].filter(([, s]) => s === 'UNHEALTHY')).toEqual([[broken.port, 'UNHEALTHY']]);
    }
    const markedMs = Date.now() - brokenAt;
    // No request reaches it any more, through any of the three Envoys.
    const before = broken.count('/');
    const answers = await Promise.all(Array.from({ length: 90 }, () => world.http('web.acme.test', '/')));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => echoOf(a).backend))).toEqual(new Set(['a', 'c']));
    expect(broken.count('/')).toBe(before);
    console.log(JSON.stringify({ brokenToEdsUnhealthyMs: markedMs }));
    // Every Envoy carried some of those requests (SO_REUSEPORT spreads connections over them).
    for (const envoy of envoys) expect(await envoy.stat('cluster.sy_acme_web_v1.upstream_rq_total')).toBeGreaterThan(0);
  });
});
