import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadSample } from '@switchyard/shared';
import { TestBackend } from './backend.js';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';
import {
  BusRecorder,
  LoadLoop,
  allServices,
  eventually,
  fastEnv,
  httpEchoCommand,
  managedInstances,
  type ManagedInstance,
} from '../support/stack.js';

/** One sample of a Prometheus text exposition: the value of `name` whose labels include `labels`. */
async function promValue(adminUrl: string, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/**
 * Issue 10's main loop through a real Envoy: Envoy's MetricsService flushes and LRS reports →
 * stats-sink → Prometheus and `switchyard.load.*` → autoscaler → local instances of the HTTP
 * demo → EDS → Envoy spreads HTTP requests over them; then scale-in without a failed request.
 */
describe('Envoy reports drive metrics and scaling', () => {
  let world: EnvoyWorld;
  let backend: TestBackend;
  let bus: BusRecorder;
  let load: LoadLoop | undefined;

  beforeAll(async () => {
    backend = await TestBackend.start('codes');
    world = await startEnvoyWorld({ services: allServices, env: fastEnv });
    bus = await BusRecorder.connect(world.nats);
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/codes', {
      domains: ['codes.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
    });
  }, 30_000);

  afterAll(async () => {
    await load?.stop();
    await bus?.close();
    await world?.stop();
    await backend?.stop();
  });

  it('shows the 2xx, 4xx and 5xx Envoy counted per tenant, service and revision in Prometheus', async () => {
    await world.until('codes.acme.test', '/warm', (a) => a.status === 200);
    const classes = ['2xx', '4xx', '5xx'] as const;
    const prometheus = async () =>
      Promise.all(
        classes.map(
          async (c) =>
            (await promValue(world.stack.adminUrl, 'switchyard_tenant_responses_total', {
              tenant: 'acme',
              service: 'codes',
              revision: 'v1',
              code_class: c,
            })) ?? 0,
        ),
      );
    const envoyCounts = async () =>
      Promise.all(classes.map(async (c) => (await world.envoy.stat(`cluster.sy_acme_codes_v1.upstream_rq_${c}`)) ?? 0));
    // Settled: Envoy's MetricsService stream is open and has flushed since the warm-up request
    // (a stream's first flush is only a baseline for the counters it carries).
    await eventually(
      async () => (await promValue(world.stack.adminUrl, 'switchyard_stats_sink_streams_open', { source: 'metrics' })) === 1,
      10_000,
    );
    await new Promise((r) => setTimeout(r, 2500));
    const before = await envoyCounts();
    const shownBefore = await prometheus();
    const paths = [
      ...Array.from({ length: 20 }, () => '/ok'),
      ...Array.from({ length: 6 }, () => '/status/404'),
      ...Array.from({ length: 4 }, () => '/status/500'),
    ];
    const statuses = (await Promise.all(paths.map((p) => world.http('codes.acme.test', p)))).map((a) => a.status);
    expect(statuses.sort()).toEqual([...Array(20).fill(200), ...Array(6).fill(404), ...Array(4).fill(500)]);
    // Envoy counts upstream attempts: 20 and 6 exactly; each 500 was retried (the route's retry policy).
    const counted = await envoyCounts();
    expect(counted[0]! - before[0]!).toBe(20);
    expect(counted[1]! - before[1]!).toBe(6);
    expect(counted[2]! - before[2]!).toBeGreaterThanOrEqual(4);
    // Its MetricsService flushes bring exactly those counts, class by class, to the sink's counters.
    const added = counted.map((n, i) => n - before[i]!);
    await eventually(async () => expect((await prometheus()).map((n, i) => n - shownBefore[i]!)).toEqual(added), 10_000);
    expect(await promValue(world.stack.adminUrl, 'switchyard_stats_sink_streams_open', { source: 'metrics' })).toBe(1);
  });

  it('turns the requests an LRS-only Envoy holds in flight into concurrency on switchyard.load', async () => {
    const samples: LoadSample[] = bus.record('load', 'switchyard.load.acme.codes.v1');
    // The LRS-only Envoy is the only one left reporting: the first one stops (and goes stale).
    const lrsOnly = await world.addEnvoy({ nodeId: 'lrs-only', metricsService: false });
    await world.envoy.stop();
    const reporters = (source: string, state: string) =>
      promValue(world.stack.adminUrl, 'switchyard_stats_sink_reporters', { source, state });
    await eventually(async () => (await reporters('metrics', 'fresh')) === 0 && (await reporters('lrs', 'fresh')) === 1, 10_000, 100);
    const held = Array.from({ length: 7 }, () => world.http('codes.acme.test', '/delay/3000'));
    const during = await eventually(() => samples.findLast((s) => s.concurrency === 7) ?? false, 3000);
    expect(during).toMatchObject({ tenant: 'acme', service: 'codes', revision: 'v1', nodes: 1 });
    expect((await Promise.all(held)).every((a) => a.status === 200)).toBe(true);
    await eventually(() => samples.at(-1)?.concurrency === 0 && samples.some((s) => s.ts > during.ts && s.responses['2xx'] > 0), 5000);
    expect(await lrsOnly.stat('cluster.sy_acme_codes_v1.upstream_rq_total')).toBeGreaterThanOrEqual(7);
    expect(await promValue(world.stack.adminUrl, 'switchyard_stats_sink_streams_open', { source: 'metrics' })).toBe(0);
  });

  it('scales an HTTP service out on the load Envoy carries, routes to the new instances, and scales in without a failed request', async () => {
    const instances = () => managedInstances(world.stack, 'v1');
    const ready = async () => (await instances()).filter((i) => i.state === 'ready');
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      healthCheck: { protocol: 'http', path: '/healthz', interval: '1s', timeout: '500ms' },
      // 4 requests per instance at full utilization; windows short enough for a test.
      scaling: { minInstances: 1, maxInstances: 4, maxConcurrency: 4, targetUtilization: 1, stableWindow: '6s', panicWindow: '1s' },
      revisions: [{ name: 'v1', command: httpEchoCommand, env: { REVISION: 'v1' } }],
    });
    await eventually(async () => (await ready()).length === 1, 20_000, 100);
    const first = (await ready())[0] as ManagedInstance;
    await world.until('web.acme.test', '/', (a) => a.status === 200);

    // 12 requests held in flight, 400 ms each: 3 instances' worth at 4 per instance.
    const loadStarted = Date.now();
    load = new LoadLoop(world.echoClient('web.acme.test'), 12, 400);
    await eventually(async () => (await ready()).length >= 3, 30_000, 100);
    const scaledOutMs = Date.now() - loadStarted;
    // EDS brought the new instances to Envoy: answers come from 3 instances, the first among them.
    load.mark();
    await eventually(() => load!.current.byInstance.size >= 3 && load!.current.byInstance.has(`127.0.0.1:${first.port}`), 15_000, 100);
    const servingMs = Date.now() - loadStarted;
    const peak = (await ready()).length;

    // Load falls to one request at a time: instances drain and stop.
    load.setWorkers(1);
    const fellAt = Date.now();
    const scaledIn = await eventually(
      async () => {
        const now = await instances();
        const serving = now.filter((i) => i.state === 'ready');
        return serving.length < peak && now.every((i) => i.state === 'ready') ? serving : false;
      },
      40_000,
      200,
    );
    console.log(
      JSON.stringify({
        scaleOutReadyMs: scaledOutMs,
        scaleOutServingMs: servingMs,
        peak,
        scaleInMs: Date.now() - fellAt,
        left: scaledIn.length,
      }),
    );
    load.mark();
    await eventually(() => load!.current.ok >= 5, 10_000, 50);
    const total = await load.stop();
    load = undefined;
    expect(total.failed, total.errors.join('\n')).toBe(0);
    const survivors = new Set(scaledIn.map((i) => `127.0.0.1:${i.port}`));
    expect([...total.byInstance.keys()].length).toBeGreaterThanOrEqual(3);
    expect(survivors.size).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
