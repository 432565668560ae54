import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configKeys, grpcService, loadGrpcPackage, protoFiles, publishDurable, type JetStreamClient } from '@switchyard/shared';
import { sha256Hex } from '../src/auth.js';
import type { WatchedEvent } from '../src/event-format.js';
import { eventStreamerMetrics } from '../src/metrics.js';
import { watchEvents } from '../src/watch-client.js';
import { WatchServer } from '../src/watch.js';
import { sampleEvents as events } from './fixtures.js';
import { eventually, logger, metricValue, startBus, startGrpc, type Bus } from './harness.js';

const WatchService = grpcService(loadGrpcPackage([protoFiles.watch]), 'switchyard.watch.v1.WatchService');
const adminToken = 'admin-secret';
const acmeToken = 'acme-secret';

async function publishHistory(js: JetStreamClient) {
  await publishDurable(js, 'status', events.status('acme', 'api'));
  await publishDurable(js, 'health', events.health('acme', 'api', 'blue'));
  await publishDurable(js, 'deploy', events.deploy('acme', 'api'));
  await publishDurable(js, 'instance', events.instance('beta', 'db', 'r1'));
  await publishDurable(js, 'scale', events.scale('acme', 'web', 'blue'));
  await publishDurable(js, 'xds', events.xds());
}

interface RawWatch {
  events: WatchedEvent[];
  caughtUp: boolean;
  status: grpc.StatusObject | undefined;
  call: grpc.ClientReadableStream<{ event?: Record<string, string>; caught_up?: object }>;
}

describe('Watch API', () => {
  let bus: Bus;
  let server: Awaited<ReturnType<typeof startGrpc>>;
  let watch: WatchServer;
  let client: grpc.Client;

  beforeAll(async () => {
    bus = await startBus();
    await bus.kv.put(configKeys.token(sha256Hex(acmeToken)), JSON.stringify({ schemaVersion: 1, tenant: 'acme', createdAt: 1 }));
    await publishHistory(bus.js);
    watch = new WatchServer({
      nc: bus.nc,
      js: bus.js,
      kv: bus.kv,
      adminToken,
      metrics: eventStreamerMetrics(bus.observability.registry),
      registry: bus.observability.registry,
      logger,
      slowWatcherMs: 300,
      pullBatch: 16,
    });
    await watch.followTokenChanges();
    server = await startGrpc((s) => s.addService(WatchService.service, watch.implementation()));
    client = new WatchService(server.address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await watch?.close();
    await server?.stop();
    await bus?.close();
  });

  function open(request: Record<string, unknown>, token?: string): RawWatch {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    const call = (client as unknown as { Watch: (r: unknown, m: grpc.Metadata) => RawWatch['call'] }).Watch(request, metadata);
    const result: RawWatch = { events: [], caughtUp: false, status: undefined, call };
    call.on('data', (response) => {
      if (response.caught_up) result.caughtUp = true;
      else if (response.event) {
        const e = response.event;
        result.events.push({
          kind: e.kind ?? '',
          stream: e.stream ?? '',
          sequence: Number(e.sequence),
          subject: e.subject ?? '',
          tenant: e.tenant ?? '',
          service: e.service ?? '',
          revision: e.revision ?? '',
          ts: Number(e.ts),
          payload: JSON.parse(e.payload_json ?? 'null'),
        });
      }
    });
    call.on('status', (status: grpc.StatusObject) => (result.status = status));
    call.on('error', () => undefined);
    return result;
  }

  it('replays everything in the order it was stored, says caught_up, then streams new events', async () => {
    const w = open({}, adminToken);
    await eventually(() => w.caughtUp, 10_000, 'caught up');
    expect(w.events.map((e) => `${e.kind} ${e.tenant}/${e.service}/${e.revision}`)).toEqual([
      'status acme/api/',
      'health acme/api/blue',
      'deploy acme/api/',
      'instance beta/db/r1',
      'scale acme/web/blue',
      'xds //',
    ]);
    expect(w.events[1]).toMatchObject({
      stream: 'SWITCHYARD_HEALTH',
      subject: 'switchyard.health.acme.api.blue',
      payload: { state: 'healthy' },
    });
    await publishDurable(bus.js, 'instance', events.instance('gamma', 'x', 'y'));
    await publishDurable(bus.js, 'health', events.health('gamma', 'x', 'y'));
    await eventually(() => w.events.length === 8, 10_000, 'live events');
    expect(
      w.events
        .slice(6)
        .map((e) => e.kind)
        .sort(),
    ).toEqual(['health', 'instance']);
    w.call.cancel();
    await eventually(async () => (await metricValue(bus, 'switchyard_event_streamer_watchers')) === 0, 10_000, 'watcher gone');
  });

  it('scopes a tenant token to its tenant and refuses others', async () => {
    const own = open({}, acmeToken);
    await eventually(() => own.caughtUp);
    expect(own.events.length).toBeGreaterThan(0);
    expect(own.events.every((e) => e.tenant === 'acme')).toBe(true);
    expect(own.events.map((e) => e.kind)).toEqual(['status', 'health', 'deploy', 'scale']);
    own.call.cancel();

    const other = open({ tenant: 'beta' }, acmeToken);
    await eventually(() => other.status);
    expect(other.status?.code).toBe(grpc.status.PERMISSION_DENIED);
    const xds = open({ tenant: 'acme', kinds: ['xds'] }, acmeToken);
    await eventually(() => xds.status);
    expect(xds.status?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('narrows to a service and to kinds', async () => {
    const w = open({ tenant: 'acme', service: 'api', kinds: ['deploy', 'health'] }, adminToken);
    await eventually(() => w.caughtUp);
    expect(w.events.map((e) => `${e.kind} ${e.service}`)).toEqual(['health api', 'deploy api']);
    w.call.cancel();
    const bad = open({ service: 'api' }, adminToken);
    await eventually(() => bad.status);
    expect(bad.status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'service needs tenant' });
  });

  it.each([
    { label: 'no token', token: undefined },
    { label: 'an unknown token', token: 'nope' },
  ])('refuses $label with UNAUTHENTICATED', async ({ token }) => {
    const w = open({}, token);
    await eventually(() => w.status);
    expect(w.status?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(w.events).toEqual([]);
  });

  it('starts from now, or resumes after a position', async () => {
    const now = open({ tenant: 'delta', start: 'START_NOW' }, adminToken);
    await eventually(() => now.caughtUp);
    expect(now.events).toEqual([]);
    await publishDurable(bus.js, 'status', events.status('delta', 'a'));
    await publishDurable(bus.js, 'status', events.status('delta', 'b'));
    await publishDurable(bus.js, 'scale', events.scale('delta', 'a', 'r'));
    await eventually(() => now.events.length === 3);
    now.call.cancel();
    const [first] = now.events;
    const resumed = open({ tenant: 'delta', kinds: ['status', 'scale'], after: { status: String(first?.sequence) } }, adminToken);
    await eventually(() => resumed.caughtUp);
    expect(resumed.events.map((e) => `${e.kind} ${e.service}`)).toEqual(['status b', 'scale a']);
    resumed.call.cancel();
  });

  it('drops a watcher that stops reading with RESOURCE_EXHAUSTED instead of buffering for it', async () => {
    const pad = 'x'.repeat(2000);
    for (let i = 0; i < 400; i++) {
      await publishDurable(bus.js, 'instance', { ...events.instance('slow', 'api', 'blue'), instance: `i-${i}`, detail: pad });
    }
    const slowBefore = await metricValue(bus, 'switchyard_event_streamer_watchers_ended_total', { reason: 'slow' });
    const w = open({ tenant: 'slow' }, adminToken);
    w.call.pause();
    await eventually(
      async () => (await metricValue(bus, 'switchyard_event_streamer_watchers_ended_total', { reason: 'slow' })) === slowBefore + 1,
      10_000,
      'slow watcher dropped',
    );
    await eventually(async () => (await metricValue(bus, 'switchyard_event_streamer_watchers')) === 0);
    w.call.resume();
    await eventually(() => w.status, 10_000, 'status delivered once the client reads again');
    expect(w.status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(w.status?.details).toMatch(/too slow.*resume with after=\{"instance":\d+\}/);
    expect(w.events.length).toBeLessThan(400);
  });

  it('ends the watches of a revoked token', async () => {
    const secret = 'short-lived';
    const key = configKeys.token(sha256Hex(secret));
    await bus.kv.put(key, JSON.stringify({ schemaVersion: 1, tenant: 'acme', createdAt: 1 }));
    const w = open({}, secret);
    await eventually(() => w.caughtUp);
    await bus.kv.delete(key);
    await eventually(() => w.status, 10_000, 'revoked watch ended');
    expect(w.status?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('serves the CLI client: replay without follow returns at caught_up; follow resumes after the server drops it', async () => {
    const seen: WatchedEvent[] = [];
    await watchEvents({ address: server.address, token: adminToken, tenant: 'acme', follow: false, onEvent: (e) => seen.push(e) });
    expect(seen.map((e) => e.kind)).toEqual(['status', 'health', 'deploy', 'scale']);

    const followed: WatchedEvent[] = [];
    const reconnects: number[] = [];
    let caughtUp = 0;
    const abort = new AbortController();
    const done = watchEvents({
      address: server.address,
      token: adminToken,
      tenant: 'epsilon',
      start: 'now',
      follow: true,
      onEvent: (e) => followed.push(e),
      onCaughtUp: () => caughtUp++,
      onReconnect: (status) => reconnects.push(status.code),
      signal: abort.signal,
    });
    await eventually(() => caughtUp === 1);
    await publishDurable(bus.js, 'status', events.status('epsilon', 'one'));
    await eventually(() => followed.length === 1);
    // A server restart ends every watch; the client resumes right after what it has.
    await watch.close();
    await publishDurable(bus.js, 'status', events.status('epsilon', 'two'));
    await watch.followTokenChanges();
    await eventually(() => followed.length === 2, 10_000, 'resumed after reconnect');
    expect(followed.map((e) => e.service)).toEqual(['one', 'two']);
    expect(reconnects).toEqual([grpc.status.UNAVAILABLE]);
    abort.abort();
    await done;
  });
});
