import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TypeUrl,
  clusterName,
  grpcService,
  loadGrpcPackage,
  protoFiles,
  configKeys,
  controlPlaneEnv,
  ensureStreams,
  freePort,
  loadConfig,
  lookupType,
  openBucket,
  buckets,
  publishDurable,
  serviceSpec,
  startHost,
  type EndpointSet,
  type Host,
  type NatsConnection,
} from '@switchyard/shared';
import type { NatsServer } from '@switchyard/shared/testing';
import { createControlPlaneService } from '../src/index.js';
import { StoreFixture } from './store/fixture.js';

/**
 * Issue 12 (Contour #1178): a restarted control plane answers no xDS request before it holds
 * every endpoint set on the stream, so the first EDS a client receives is complete.
 */
interface SotwResponse {
  type_url: string;
  resources?: { type_url: string; value: Buffer }[];
}

describe('a control-plane restart with 1,000 endpoint sets on the stream', () => {
  const services = 100;
  const revisionsPerService = 10;
  let fixture: StoreFixture;
  let nats: NatsServer;
  let nc: NatsConnection;

  const endpointSet = (service: number, revision: number): EndpointSet => ({
    schemaVersion: 1,
    tenant: 'acme',
    service: `svc-${service}`,
    revision: `r${revision}`,
    generation: 1,
    endpoints: [
      { id: `i-${service}-${revision}`, address: '10.0.0.1', port: 1000 + service * revisionsPerService + revision, state: 'ready' },
    ],
    ts: 1,
  });

  beforeAll(async () => {
    fixture = await StoreFixture.start();
    nats = fixture.server;
    nc = await fixture.connect();
    const { js } = await ensureStreams(nc);
    const kv = await openBucket(nc, buckets.config);
    await kv.put(
      configKeys.tenant('acme'),
      JSON.stringify({ schemaVersion: 1, name: 'acme', spec: { domains: ['acme.test'] }, updatedAt: 1 }),
    );
    for (let s = 0; s < services; s++) {
      const spec = serviceSpec.parse({
        domains: [`svc-${s}.acme.test`],
        revisions: Array.from({ length: revisionsPerService }, (_, r) => ({ name: `r${r}`, command: 'run' })),
        traffic: Array.from({ length: revisionsPerService }, (_, r) => ({ revision: `r${r}`, percent: 100 / revisionsPerService })),
      });
      await kv.put(
        configKeys.service('acme', `svc-${s}`),
        JSON.stringify({ schemaVersion: 1, tenant: 'acme', name: `svc-${s}`, spec, createdAt: 1, updatedAt: 1 }),
      );
    }
    const sets = Array.from({ length: services * revisionsPerService }, (_, i) =>
      endpointSet(Math.floor(i / revisionsPerService), i % revisionsPerService),
    );
    await Promise.all(sets.map((set) => publishDurable(js, 'endpoints', set)));
  }, 60_000);
  afterAll(async () => {
    await fixture.close();
  });

  async function startControlPlane(): Promise<Host> {
    const env = {
      NATS_URL: nats.url,
      API_PORT: String(await freePort()),
      SWITCHYARD_ADMIN_TOKEN: 'restart-test-token',
      SWITCHYARD_ENDPOINT_CIDRS: '10.0.0.0/8',
      LOG_LEVEL: 'silent',
    };
    return startHost({
      name: 'control-plane',
      services: [createControlPlaneService(loadConfig(controlPlaneEnv, env))],
      natsUrl: nats.url,
      grpcPort: await freePort(),
      adminPort: await freePort(),
      logLevel: 'silent',
      otlpEndpoint: undefined,
    });
  }

  /** The endpoints in the first EDS response a fresh SotW ADS client gets, asking for every cluster. */
  async function firstEdsEndpoints(port: number, node: string): Promise<number> {
    const Ads = grpcService(loadGrpcPackage([protoFiles.ads]), 'envoy.service.discovery.v3.AggregatedDiscoveryService');
    const client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = (
      client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<object, SotwResponse> }
    ).StreamAggregatedResources();
    call.on('error', () => undefined);
    try {
      const first = new Promise<SotwResponse>((resolve, reject) => {
        call.once('data', resolve);
        setTimeout(() => reject(new Error('no EDS response within 15 s')), 15_000).unref();
      });
      const names = Array.from({ length: services * revisionsPerService }, (_, i) =>
        clusterName({ tenant: 'acme', service: `svc-${Math.floor(i / revisionsPerService)}`, revision: `r${i % revisionsPerService}` }),
      );
      call.write({ node: { id: node, cluster: 'test' }, type_url: TypeUrl.ClusterLoadAssignment, resource_names: names });
      const response = await first;
      const assignment = lookupType(TypeUrl.ClusterLoadAssignment);
      return (response.resources ?? [])
        .map((any) => assignment.toObject(assignment.decode(any.value)) as { endpoints?: { lb_endpoints?: unknown[] }[] })
        .reduce((sum, cla) => sum + (cla.endpoints ?? []).reduce((n, locality) => n + (locality.lb_endpoints?.length ?? 0), 0), 0);
    } finally {
      call.cancel();
      client.close();
    }
  }

  it('serves all of them in the first EDS, restart after restart', async () => {
    for (let restart = 0; restart < 3; restart++) {
      const host = await startControlPlane();
      try {
        expect(await firstEdsEndpoints(host.grpcPort, `restart-${restart}`)).toBe(services * revisionsPerService);
      } finally {
        await host.stop();
      }
    }
  }, 120_000);
});
