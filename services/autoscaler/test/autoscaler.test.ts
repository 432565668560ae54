import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buckets,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  openBucket,
  publish,
  publishDurable,
  subscribe,
  untilConnected,
  type EndpointSet,
  type InstanceEvent,
  type KV,
  type LoadSample,
  type NatsConnection,
  type Observability,
  type RevisionRef,
  type ScaleDecision,
  type ServiceSpecInput,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { Autoscaler } from '../src/autoscaler.js';
import { localProvider } from '../src/providers/local.js';
import { httpGet, instancePid, instanceServer, processRunning, serviceRecordFor, until } from './helpers.js';

const logger = createLogger('autoscaler-test', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent');
const node = process.execPath;

/** Fast settings: target 5 in flight per instance, 4 s stable and 1 s panic windows. */
const scaling = {
  minInstances: 1,
  maxInstances: 4,
  maxConcurrency: 10,
  targetUtilization: 0.5,
  stableWindow: '4s',
  panicWindow: '1s',
} as const;
const healthCheck = { protocol: 'http', path: '/healthz', interval: 1000, timeout: 500, gracePeriod: 300 } as const;

function commandService(
  revisions: { name: string; env?: Record<string, string> }[],
  traffic?: { revision: string; percent: number }[],
): ServiceSpecInput {
  return {
    domains: ['shop.example.com'],
    healthCheck,
    scaling,
    revisions: revisions.map((r) => ({ name: r.name, command: [node, instanceServer], env: r.env ?? {} })),
    ...(traffic ? { traffic } : {}),
  };
}

describe('autoscaler against a real nats-server with real instances', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let config: KV;
  let leader: { autoscaler: Autoscaler; observability: Observability; nc: NatsConnection };
  const endpointSets: EndpointSet[] = [];
  const decisions: ScaleDecision[] = [];
  const instanceEvents: InstanceEvent[] = [];
  const loadTimers: NodeJS.Timeout[] = [];
  let stateDir = '';

  async function startReplica(name: string) {
    const observability = createObservability(name);
    const replicaNc = await connectNats({ servers: server.url, name, logger, observability });
    stateDir = await mkdtemp(join(tmpdir(), 'switchyard-local-state-'));
    const provider = localProvider({
      host: '127.0.0.1',
      stateDir,
      startTimeoutMs: 10_000,
      stopTimeoutMs: 2000,
      logger,
      tenantUids: { base: 2_000_000, count: 1_000_000 },
      backoff: { initialMs: 200, maxMs: 2000 },
      probeIntervalMs: 50,
    });
    const autoscaler = new Autoscaler({
      nc: replicaNc,
      logger,
      registry: observability.registry,
      readiness: observability.readiness,
      provider,
      holder: name,
      leaseTtlMs: 1500,
      drainTimeoutMs: 5000,
      maxClockSkewMs: 2000,
      tickMs: 200,
    });
    await autoscaler.start();
    return { autoscaler, observability, nc: replicaNc };
  }

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'test-driver', logger, observability: createObservability('driver') });
    await ensureStreams(nc);
    config = await openBucket(nc, buckets.config);
    const deps = { logger, registry: createObservability('recorder').registry };
    subscribe(nc, 'endpoints', 'switchyard.endpoints.>', deps, (m) => void endpointSets.push(m.payload));
    subscribe(nc, 'scale', 'switchyard.scale.>', deps, (m) => void decisions.push(m.payload));
    subscribe(nc, 'instance', 'switchyard.instance.>', deps, (m) => void instanceEvents.push(m.payload));
    leader = await startReplica('leader');
    await until(() => leader.autoscaler.isLeader, 10_000, 'the replica to lead');
  });

  afterAll(async () => {
    loadTimers.forEach(clearInterval);
    await leader.autoscaler.stop();
    await leader.nc.close();
    await nc.close();
    await server.dispose();
    await rm(stateDir, { recursive: true, force: true });
  });

  const put = (tenant: string, service: string, spec: ServiceSpecInput) =>
    config.put(configKeys.service(tenant, service), JSON.stringify(serviceRecordFor(tenant, service, spec)));

  const setsOf = (ref: RevisionRef) =>
    endpointSets.filter((s) => s.tenant === ref.tenant && s.service === ref.service && s.revision === ref.revision);
  const latestSet = (ref: RevisionRef) => setsOf(ref).at(-1);
  const readyEndpoints = (ref: RevisionRef) => latestSet(ref)?.endpoints.filter((e) => e.state === 'ready') ?? [];

  function sample(ref: RevisionRef, concurrency: number, ts = Date.now()): LoadSample {
    return {
      schemaVersion: 1,
      ...ref,
      concurrency,
      rps: concurrency * 10,
      responses: { '2xx': concurrency * 10, '3xx': 0, '4xx': 0, '5xx': 0 },
      errorRatio: 0,
      windowMs: 200,
      ts,
      nodes: 1,
    };
  }

  /** Publishes a load sample for `ref` every 200 ms, like the stats-sink; returns a setter for the load. */
  function loadGenerator(ref: RevisionRef, initial: number) {
    let concurrency = initial;
    const timer = setInterval(() => publish(nc, 'load', sample(ref, concurrency)), 200);
    loadTimers.push(timer);
    return {
      set: (value: number) => (concurrency = value),
      stop: () => clearInterval(timer),
    };
  }

  async function metric(observability: Observability, name: string, labels: Record<string, string>): Promise<number> {
    const found = await observability.registry.getSingleMetric(name)?.get();
    const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return value?.value ?? 0;
  }

  it('starts minInstances, scales up on load within a report interval, and drains on the way down', async () => {
    const ref = { tenant: 'acme', service: 'shop', revision: 'v1' };
    await put('acme', 'shop', commandService([{ name: 'v1' }]));
    const [first] = await until(() => readyEndpoints(ref).length === 1 && readyEndpoints(ref), 15_000, 'one ready endpoint');
    expect((await httpGet(first!.port, '/'))?.status).toBe(200);

    const load = loadGenerator(ref, 15);
    // 15 in flight at 5 per instance: panic (3 wanted ≥ 2 × 1 ready) sizes on the fresh sample.
    const surge = await until(() => decisions.find((d) => d.revision === 'v1' && d.desired === 3), 10_000, 'a scale-up decision');
    expect(surge).toMatchObject({ panic: true, targetPerInstance: 5, current: 1 });
    expect(surge.panicConcurrency).toBeGreaterThan(0);
    expect(surge.reason).toContain('panic');
    await until(() => readyEndpoints(ref).length === 3, 15_000, 'three ready endpoints');
    for (const endpoint of readyEndpoints(ref)) expect((await httpGet(endpoint.port, '/'))?.status).toBe(200);

    load.set(3);
    await until(() => readyEndpoints(ref).length === 1 && latestSet(ref)!.endpoints.length === 1, 20_000, 'back to one endpoint');
    load.stop();
    // Every removed endpoint was published as draining before it disappeared.
    const sets = setsOf(ref);
    const removed = new Set(sets.flatMap((s) => s.endpoints.map((e) => e.id)));
    for (const e of latestSet(ref)!.endpoints) removed.delete(e.id);
    expect(removed.size).toBe(2);
    for (const id of removed) {
      const states = sets.map((s) => s.endpoints.find((e) => e.id === id)?.state);
      const lastSeen = states.findLastIndex((state) => state !== undefined);
      expect(states[lastSeen]).toBe('draining');
      // The endpoint leaves the set when the stop begins; the event follows the exit.
      await until(() => instanceEvents.some((e) => e.instance === id && e.event === 'stopped'), 5000, `${id} to stop`);
    }
    // Generations only grow.
    for (let i = 1; i < sets.length; i++) expect(sets[i]!.generation).toBeGreaterThan(sets[i - 1]!.generation);
    expect(await metric(leader.observability, 'switchyard_autoscaler_drains_total', { outcome: 'completed' })).toBeGreaterThanOrEqual(2);
  });

  it('drops load samples that fail their schema, come out of order or from the future, and counts them', async () => {
    const ref = { tenant: 'acme', service: 'inputs', revision: 'v1' };
    await put('acme', 'inputs', commandService([{ name: 'v1' }]));
    await until(() => readyEndpoints(ref).length === 1, 15_000, 'one ready endpoint');
    const before = decisions.filter((d) => d.service === 'inputs').length;
    const now = Date.now();
    nc.publish('switchyard.load.acme.inputs.v1', 'not json');
    nc.publish('switchyard.load.acme.inputs.v1', JSON.stringify({ ...sample(ref, 5, now), concurrency: -1 }));
    publish(nc, 'load', sample(ref, 5, now));
    publish(nc, 'load', sample(ref, 5, now - 1000));
    publish(nc, 'load', sample(ref, 5, now + 60_000));
    publish(nc, 'load', sample({ ...ref, service: 'unknown' }, 5, now));
    await until(
      async () => (await metric(leader.observability, 'switchyard_autoscaler_load_samples_total', { result: 'from_future' })) === 1,
    );
    const counted = async (result: string) => metric(leader.observability, 'switchyard_autoscaler_load_samples_total', { result });
    expect(await counted('accepted')).toBeGreaterThanOrEqual(1);
    expect(await counted('out_of_order')).toBe(1);
    expect(await counted('unmanaged')).toBe(1);
    expect(await metric(leader.observability, 'switchyard_bus_messages_dropped_total', { kind: 'load', reason: 'schema' })).toBe(1);
    expect(await metric(leader.observability, 'switchyard_bus_messages_dropped_total', { kind: 'load', reason: 'not_json' })).toBe(1);
    // Only the accepted sample led to a decision.
    await until(() => decisions.filter((d) => d.service === 'inputs').length > before);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(decisions.filter((d) => d.service === 'inputs' && d.ts >= now).length).toBe(1);
  });

  it('scales only revisions that receive traffic and drains the old one when traffic moves', async () => {
    const blue = { tenant: 'acme', service: 'deploy', revision: 'blue' };
    const green = { tenant: 'acme', service: 'deploy', revision: 'green' };
    await put(
      'acme',
      'deploy',
      commandService(
        [{ name: 'blue' }, { name: 'green' }],
        [
          { revision: 'blue', percent: 100 },
          { revision: 'green', percent: 0 },
        ],
      ),
    );
    await until(() => readyEndpoints(blue).length === 1, 15_000, 'blue ready');
    expect(readyEndpoints(green)).toHaveLength(0);
    await put(
      'acme',
      'deploy',
      commandService(
        [{ name: 'blue' }, { name: 'green' }],
        [
          { revision: 'blue', percent: 0 },
          { revision: 'green', percent: 100 },
        ],
      ),
    );
    await until(() => readyEndpoints(green).length === 1, 15_000, 'green ready');
    await until(() => latestSet(blue)?.endpoints.length === 0, 15_000, 'blue drained to zero');
    const blueStates = setsOf(blue).map((s) => s.endpoints.map((e) => e.state).join(','));
    expect(blueStates).toContain('draining');
    expect(decisions.some((d) => d.revision === 'blue' && d.desired === 0 && d.reason.includes('no traffic'))).toBe(true);
  });

  it('reports image revisions as not runnable and leaves static ones to the control plane', async () => {
    await put('acme', 'mixed', {
      domains: ['mixed.example.com'],
      revisions: [
        { name: 'img', image: 'registry.example.com/app:1' },
        { name: 'fixed', endpoints: [{ address: '10.0.0.1', port: 8080 }] },
      ],
      traffic: [
        { revision: 'img', percent: 50 },
        { revision: 'fixed', percent: 50 },
      ],
    });
    const event = await until(() => instanceEvents.find((e) => e.service === 'mixed' && e.event === 'not_runnable'));
    expect(event).toMatchObject({ revision: 'img', detail: expect.stringContaining('runs no images') });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(endpointSets.filter((s) => s.service === 'mixed')).toHaveLength(0);
    expect(leader.autoscaler.describe()).toMatchObject({
      notRunnable: [expect.objectContaining({ revision: 'img' })],
      static: expect.arrayContaining(['acme/mixed/fixed']),
    });
  });

  it('replaces an instance that stays unhealthy longer than the grace period', async () => {
    const ref = { tenant: 'acme', service: 'sick', revision: 'v1' };
    await put('acme', 'sick', commandService([{ name: 'v1' }]));
    const [sick] = await until(() => readyEndpoints(ref).length === 1 && readyEndpoints(ref), 15_000, 'one ready endpoint');
    const { js } = await ensureStreams(nc);
    await publishDurable(js, 'health', {
      schemaVersion: 1,
      ...ref,
      endpoint: { address: sick!.address, port: sick!.port },
      state: 'unhealthy',
      previous: 'healthy',
      reason: '5 failed checks',
      votes: [{ checker: 'envoy-1', state: 'unhealthy', ts: Date.now() }],
      ts: Date.now(),
    });
    await until(() => instanceEvents.find((e) => e.instance === sick!.id && e.event === 'replaced'), 10_000, 'the replacement');
    await until(() => readyEndpoints(ref).length === 1 && readyEndpoints(ref)[0]!.id !== sick!.id, 15_000, 'a new ready endpoint');
    await until(() => instanceEvents.find((e) => e.instance === sick!.id && e.event === 'stopped'), 15_000, 'the old one to stop');
  });

  it('stops a deleted service and publishes its empty endpoint set', async () => {
    const ref = { tenant: 'acme', service: 'gone', revision: 'v1' };
    await put('acme', 'gone', commandService([{ name: 'v1' }]));
    const [endpoint] = await until(() => readyEndpoints(ref).length === 1 && readyEndpoints(ref), 15_000, 'one ready endpoint');
    const pid = await instancePid(endpoint!.port);
    await config.delete(configKeys.service('acme', 'gone'));
    await until(() => latestSet(ref)?.endpoints.length === 0, 15_000, 'the empty set');
    // The set empties once the instance is stopping; SIGTERM takes a moment to end it on a busy machine.
    await until(() => !processRunning(pid!), 5000, 'the instance to exit');
  });

  it('still follows the desired state after a nats-server restart that lost its consumers', async () => {
    // As when the node that held the watch's ephemeral consumer is replaced.
    await server.stop();
    await rm(join(server.storeDir, 'js', 'jetstream', '$G', 'streams', `KV_${buckets.config}`, 'obs'), { recursive: true, force: true });
    await server.restart();
    await untilConnected(nc);
    await until(
      async () => {
        await put('acme', 'later', {
          domains: ['later.example.com'],
          revisions: [{ name: 'fixed', endpoints: [{ address: '10.0.0.2', port: 8080 }] }],
        }).catch(() => undefined);
        return leader.autoscaler.describe().static.includes('acme/later/fixed');
      },
      20_000,
      'the spec written after the restart',
    );
  });
});
