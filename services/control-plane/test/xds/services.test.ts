import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcService, loadGrpcPackage, lookupType, protoFiles, TypeUrl } from '@switchyard/shared';
import { cluster, endpoints, metricValue, snapshotOf, startXds, waitFor, type RunningXds } from './helpers.js';

/** The per-type services, Fetch, bad input and stream age, with proto-loader clients. */

const pkg = loadGrpcPackage([protoFiles.cds, protoFiles.eds, protoFiles.sds]);
const service = (name: string) => grpcService(pkg, name);
const node = { id: 'per-type', cluster: 'test', user_agent_name: 'envoy' };
const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');

interface Response {
  version_info: string;
  nonce: string;
  type_url: string;
  resources?: { type_url: string; value: Buffer }[];
}

type Duplex = grpc.ClientDuplexStream<object, Response>;

describe('per-type xDS services', () => {
  let running: RunningXds | undefined;
  const clients: grpc.Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await running?.stop();
    running = undefined;
  });
  const client = (name: string) => {
    const Ctor = service(name);
    const c = new Ctor(`127.0.0.1:${running!.port}`, grpc.credentials.createInsecure());
    clients.push(c);
    return c as unknown as Record<string, (...args: unknown[]) => unknown>;
  };
  const nextData = (call: Duplex) => new Promise<Response>((resolve) => call.once('data', resolve));
  const ended = (call: Duplex) => new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));

  it('EDS over its own service, with type_url left empty', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf({ endpoints: [endpoints('a', [1001]), endpoints('b', [2001])] }));
    const call = client('envoy.service.endpoint.v3.EndpointDiscoveryService').StreamEndpoints!() as Duplex;
    call.on('error', () => undefined);
    const first = nextData(call);
    call.write({ node, resource_names: ['b'] });
    const response = await first;
    expect(response.type_url).toBe(TypeUrl.ClusterLoadAssignment);
    expect(response.resources).toHaveLength(1);
    call.write({ response_nonce: response.nonce, version_info: response.version_info, resource_names: ['b'] });
    await waitFor('ACK', () => running!.xds.nodes()[0]?.types.eds?.status === 'ACKED');
    expect(running.xds.nodes()[0]?.streams[0]?.api).toBe('eds');
    call.cancel();
  });

  it('Fetch answers once with every requested resource', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf({ clusters: [cluster('a'), cluster('b')] }));
    const cds = client('envoy.service.cluster.v3.ClusterDiscoveryService');
    const response = await new Promise<Response>((resolve, reject) =>
      cds.FetchClusters!({ node, type_url: TypeUrl.Cluster }, (err: Error | null, res: Response) => (err ? reject(err) : resolve(res))),
    );
    expect(response.resources).toHaveLength(2);
  });

  it('ends a stream whose first request has no node, and counts it', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf({}));
    const call = client('envoy.service.cluster.v3.ClusterDiscoveryService').StreamClusters!() as Duplex;
    call.on('error', () => undefined);
    const status = ended(call);
    call.write({ type_url: TypeUrl.Cluster });
    expect((await status).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await metricValue(running.registry, 'switchyard_xds_bad_requests_total', { reason: 'invalid' })).toBe(1);
  });

  it('ignores a type it does not serve on ADS and keeps the stream', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf({ clusters: [cluster('a')] }));
    const Ads = grpcService(loadGrpcPackage([protoFiles.ads]), 'envoy.service.discovery.v3.AggregatedDiscoveryService');
    const ads = new Ads(`127.0.0.1:${running.port}`, grpc.credentials.createInsecure());
    clients.push(ads);
    const call = (ads as unknown as { StreamAggregatedResources(): Duplex }).StreamAggregatedResources();
    call.on('error', () => undefined);
    call.write({ node, type_url: 'type.googleapis.com/envoy.service.runtime.v3.Runtime', resource_names: ['x'] });
    const first = nextData(call);
    call.write({ type_url: TypeUrl.Cluster });
    expect((await first).resources).toHaveLength(1);
    expect(await metricValue(running.registry, 'switchyard_xds_bad_requests_total', { reason: 'unknown_type' })).toBe(1);
    call.cancel();
  });

  it('ends a stream whose client stops reading, releasing its share of the send budget', async () => {
    running = await startXds({ stalledWriteMs: 300 });
    // About 1.5 MB of clusters, far more than one HTTP/2 window.
    running.cache.setSnapshot(snapshotOf({ clusters: Array.from({ length: 20_000 }, (_, i) => cluster(`c${i}`)) }));
    // A raw HTTP/2 client that sends one request and never reads: no window updates, so the
    // server's write cannot complete.
    const session = http2.connect(`http://127.0.0.1:${running.port}`);
    session.on('error', () => undefined);
    const req = session.request({
      ':method': 'POST',
      ':path': '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    req.on('error', () => undefined);
    req.pause();
    const message = DiscoveryRequest.encode(DiscoveryRequest.fromObject({ node, type_url: TypeUrl.Cluster })).finish();
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    req.write(frame);
    await waitFor('bytes stuck in flight', () => running!.xds.bytesInFlight > 1024 * 1024);
    await waitFor('the stalled stream ended', () => running!.xds.streamCount === 0);
    expect(running.xds.bytesInFlight).toBe(0);
    expect(await metricValue(running.registry, 'switchyard_xds_bad_requests_total', { reason: 'stalled' })).toBe(1);
    session.destroy();
  });

  it('ends streams at their (jittered) maximum age so clients reconnect', async () => {
    running = await startXds({ maxStreamAgeMs: 200 });
    running.cache.setSnapshot(snapshotOf({ clusters: [cluster('a')] }));
    const call = client('envoy.service.cluster.v3.ClusterDiscoveryService').StreamClusters!() as Duplex;
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    const status = ended(call);
    call.write({ node, type_url: TypeUrl.Cluster });
    expect((await status).code).toBe(grpc.status.OK);
    await waitFor('the stream gone', () => running!.xds.streamCount === 0);
    expect(running.events.map((e) => e.event)).toEqual(['connect', 'disconnect']);
  });
});
