import type { Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcService, listenGrpcShared, loadGrpcPackage, protoFiles, TypeUrl, type XdsEvent } from '@switchyard/shared';
import { XdsCache, startXdsWorkers, type XdsServer } from '../../src/xds/index.js';
import { DeltaClient, type DeltaResponse } from './delta-client.js';
import { cluster, endpoints, metricValue, silentLogger, snapshotOf, waitFor } from './helpers.js';

/**
 * xDS served from worker processes: real gRPC ADS clients, each on a connection of its own,
 * against a port whose connections this process and one worker process (the compiled
 * worker-process.js, so `pnpm build` first) serve in turn. Every client must see the same config, ACKs and NACKs
 * must come back as events, and an EDS change must reach streams on both sides.
 */

// Its own connection per client: grpc-js otherwise shares one between clients of one target.
const ownConnection = { 'grpc.use_local_subchannel_pool': 1 };
const spec = (port: number) => ({ clusters: [cluster('a'), cluster('b')], endpoints: [endpoints('a', [port]), endpoints('b', [2001])] });

interface Running {
  cache: XdsCache;
  local: XdsServer;
  xds: XdsServer;
  registry: Registry;
  port: number;
  events: XdsEvent[];
  stop(): void;
}

async function startWithWorker(): Promise<Running> {
  const cache = new XdsCache();
  cache.setSnapshot(snapshotOf(spec(1001)));
  const events: XdsEvent[] = [];
  const server = new grpc.Server();
  const deps = { logger: silentLogger, registry: new Registry(), onEvent: (e: XdsEvent) => events.push(e) };
  const workers = startXdsWorkers(server, cache, deps, {
    count: 1,
    settings: {
      security: { mode: 'plaintext' },
      peersAuthenticated: false,
      edgeIdentities: [],
      maxStreamAgeMs: undefined,
      logLevel: 'silent',
    },
  });
  await workers.ready();
  const listener: NetServer = await listenGrpcShared(server, grpc.ServerCredentials.createInsecure(), '127.0.0.1', 0, workers.take);
  const port = (listener.address() as { port: number }).port;
  return {
    cache,
    local: workers.local,
    xds: workers.server,
    registry: deps.registry,
    port,
    events,
    stop: () => {
      workers.server.close();
      listener.close();
      server.forceShutdown();
    },
  };
}

interface SotwResponse {
  version_info: string;
  nonce: string;
  type_url: string;
  resources?: { value: Buffer }[];
}

/** A State-of-the-World ADS client: CDS wildcard and EDS for both clusters, responses queued per type. */
class SotwClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, SotwResponse>;
  private readonly received: SotwResponse[] = [];

  constructor(
    port: number,
    readonly nodeId: string,
  ) {
    const Ads = grpcService(loadGrpcPackage([protoFiles.ads]), 'envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), ownConnection);
    const ads = this.client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<object, SotwResponse> };
    this.call = ads.StreamAggregatedResources();
    this.call.on('data', (r: SotwResponse) => this.received.push(r));
    this.call.on('error', () => undefined);
    this.call.write({ node: { id: nodeId, cluster: 'test', user_agent_name: 'envoy' }, type_url: TypeUrl.Cluster });
    this.call.write({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['a', 'b'] });
  }

  /** The next response of a type, after `seen` earlier ones of it. */
  response(typeUrl: string, seen = 0): Promise<SotwResponse> {
    return waitFor(`${this.nodeId} ${typeUrl} #${seen + 1}`, () => this.received.filter((r) => r.type_url === typeUrl)[seen]);
  }

  answer(r: SotwResponse, names: string[], error?: string): void {
    const errorDetail = error === undefined ? {} : { error_detail: { code: 3, message: error } };
    this.call.write({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names, ...errorDetail });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

const eventsOf = (running: Running, event: string, nodeId: string) =>
  running.events.filter((e) => e.event === event && e.nodeId === nodeId);

describe('xDS from worker processes', () => {
  let running: Running | undefined;
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
    running?.stop();
    running = undefined;
  });

  it('SotW: streams on this process and on a worker get the config, ACK, NACK, and every EDS change', async () => {
    running = await startWithWorker();
    const clients = ['sotw-1', 'sotw-2', 'sotw-3'].map((id) => new SotwClient(running!.port, id));
    closers.push(...clients.map((c) => () => c.close()));
    for (const c of clients) {
      const cds = await c.response(TypeUrl.Cluster);
      expect(cds.resources).toHaveLength(2);
      c.answer(cds, []);
      const eds = await c.response(TypeUrl.ClusterLoadAssignment);
      expect(eds.resources).toHaveLength(2);
      c.answer(eds, ['a', 'b']);
    }
    // Connections alternate: the worker serves the first and third, this process the second.
    await waitFor('three streams, one of them local', () => running!.xds.streamCount === 3 && running!.local.streamCount === 1);
    await waitFor('every node ACKed', () => {
      const nodes = running!.xds.nodes();
      return nodes.length === 3 && nodes.every((n) => n.types.eds?.status === 'ACKED' && n.types.cds?.status === 'ACKED');
    });
    for (const c of clients) expect(eventsOf(running, 'ack', c.nodeId).length).toBeGreaterThanOrEqual(2);

    running.cache.setSnapshot(snapshotOf(spec(1002)));
    for (const c of clients) {
      const update = await c.response(TypeUrl.ClusterLoadAssignment, 1);
      expect(update.resources).toHaveLength(1);
      expect(update.resources![0]!.value.includes(Buffer.from([0xea, 0x07]))).toBe(true); // port 1002 as a varint
      c.answer(update, ['a', 'b'], 'rejected by the test');
    }
    await waitFor('a NACK from every node', () => clients.every((c) => eventsOf(running!, 'nack', c.nodeId).length === 1));
    await waitFor('every node shows the NACK', () => running!.xds.nodes().every((n) => n.types.eds?.status === 'NACKED'));
    // The registry sums this process's metrics and the worker's.
    await waitFor(
      'NACKs counted from both processes',
      async () => (await metricValue(running!.registry, 'switchyard_xds_nacks_total')) === 3,
    );
    expect(await metricValue(running.registry, 'switchyard_xds_streams')).toBe(3);
    expect(await metricValue(running.registry, 'switchyard_xds_resources', { group: 'envoy', type: 'cds' })).toBe(2);
  });

  it('delta: streams on this process and on a worker get the config, ACK, NACK, and every EDS change', async () => {
    running = await startWithWorker();
    const ids = ['delta-1', 'delta-2'];
    const clients = ids.map((id) => new DeltaClient(running!.port, id, 'envoy', ownConnection));
    closers.push(...clients.map((c) => () => c.close()));
    const answer = async (c: DeltaClient, typeUrl: string): Promise<DeltaResponse> => {
      const r = await c.next(15_000);
      expect(r.type_url).toBe(typeUrl);
      c.ack(r);
      return r;
    };
    for (const c of clients) {
      c.send({ type_url: TypeUrl.Cluster });
      expect((await answer(c, TypeUrl.Cluster)).resources.map((r) => r.name).sort()).toEqual(['a', 'b']);
      c.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['a', 'b'] });
      expect((await answer(c, TypeUrl.ClusterLoadAssignment)).resources).toHaveLength(2);
    }
    await waitFor('one stream on each side', () => running!.xds.streamCount === 2 && running!.local.streamCount === 1);
    await waitFor('both nodes ACKed', () => running!.xds.nodes().filter((n) => n.types.eds?.status === 'ACKED').length === 2);

    const before = clients.map((c) => c.held.get(TypeUrl.ClusterLoadAssignment)!.get('a'));
    running.cache.setSnapshot(snapshotOf(spec(1002)));
    for (const [i, c] of clients.entries()) {
      const update = await c.next(15_000);
      expect(update.resources.map((r) => r.name)).toEqual(['a']);
      expect(c.held.get(TypeUrl.ClusterLoadAssignment)!.get('a')).not.toBe(before[i]);
      c.send({ type_url: update.type_url, response_nonce: update.nonce, error_detail: { code: 3, message: 'rejected by the test' } });
    }
    await waitFor('a NACK from both nodes', () => ids.every((id) => eventsOf(running!, 'nack', id).length === 1));
  });
});
