import { envoyBinary } from './envoy/support.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  controlPlaneEnv,
  freePort,
  startHost,
  grpcService,
  loadConfig,
  loadGrpcPackage,
  lookupType,
  protoFiles,
  TypeUrl,
  type GrpcSecurity,
  type Host,
  type ServiceModule,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { createControlPlaneService } from '@switchyard/control-plane';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, adminToken, eventStreamer, eventually, statsSink } from './support/stack.js';
import { repoPath } from './deploy/support.js';

/**
 * Issue 11, point 2: the Envoy-facing gRPC port serves mutual TLS, and the client
 * certificate's identity decides what a stream gets. Certificates come from
 * deploy/tls/make-certs.sh; the clients are real grpc-js clients and a real Envoy with
 * deploy/envoy/bootstrap.yaml.
 */

const ads = grpcService(loadGrpcPackage([protoFiles.ads]), 'envoy.service.discovery.v3.AggregatedDiscoveryService');
const sds = grpcService(loadGrpcPackage([protoFiles.sds]), 'envoy.service.secret.v3.SecretDiscoveryService');
const Cluster = lookupType('envoy.config.cluster.v3.Cluster');
const Secret = lookupType('envoy.extensions.transport_sockets.tls.v3.Secret');

interface Response {
  version_info: string;
  nonce: string;
  type_url: string;
  resources?: { type_url: string; value: Buffer }[];
}
type Duplex = grpc.ClientDuplexStream<object, Response>;
type Methods = Record<string, (...args: unknown[]) => unknown>;

/** An ADS stream that keeps every response, by type. */
class AdsStream {
  readonly responses: Response[] = [];
  status: grpc.StatusObject | undefined;
  private readonly call: Duplex;

  constructor(client: grpc.Client, nodeId: string) {
    this.call = (client as unknown as Methods).StreamAggregatedResources!() as Duplex;
    this.call.on('data', (r: Response) => this.responses.push(r));
    this.call.on('status', (s) => (this.status = s));
    this.call.on('error', () => undefined);
    this.node = { id: nodeId, cluster: 'test', user_agent_name: 'envoy' };
  }

  private readonly node: object;

  request(typeUrl: string, names: string[]): void {
    this.call.write({ node: this.node, type_url: typeUrl, resource_names: names });
  }

  of(typeUrl: string): Response[] {
    return this.responses.filter((r) => r.type_url === typeUrl);
  }

  close(): void {
    this.call.cancel();
  }
}

interface TlsHost {
  host: Host;
  grpcPort: number;
  apiUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/** One service's host as a standalone deployment runs it (its own gRPC port with mutual TLS), on loopback. */
async function startTlsHost(
  nats: NatsServer,
  name: string,
  service: (env: Record<string, string>) => ServiceModule,
  grpcSecurity: GrpcSecurity,
): Promise<TlsHost> {
  const apiPort = await freePort();
  const adminPort = await freePort();
  const env = {
    NATS_URL: nats.url,
    API_PORT: String(apiPort),
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
    LOG_LEVEL: 'silent',
  };
  const host = await startHost({
    name,
    services: [service(env)],
    natsUrl: nats.url,
    grpcPort: 0,
    adminPort,
    logLevel: 'silent',
    otlpEndpoint: undefined,
    grpcSecurity,
  });
  return {
    host,
    grpcPort: host.grpcPort,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stop: () => host.stop(),
  };
}

describe('the xDS port with mutual TLS', () => {
  const certs = mkdtempSync(join(tmpdir(), 'switchyard-certs-'));
  const tenantKey = join(certs, 'tenant.key');
  const tenantCert = join(certs, 'tenant.crt');
  const mtls = (name: string): GrpcSecurity => ({
    mode: 'mtls',
    certFile: join(certs, name, 'tls.crt'),
    keyFile: join(certs, name, 'tls.key'),
    clientCaFile: join(certs, 'ca.crt'),
  });
  const clientCredentials = (identity: string | undefined) =>
    grpc.credentials.createSsl(
      readFileSync(join(certs, 'ca.crt')),
      identity === undefined ? null : readFileSync(join(certs, identity, 'tls.key')),
      identity === undefined ? null : readFileSync(join(certs, identity, 'tls.crt')),
    );

  let nats: NatsServer;
  let controlPlane: TlsHost;
  let listenerPorts: { http: number; https: number };
  let backend: Awaited<ReturnType<typeof startGrpcEcho>>;
  const clients: grpc.Client[] = [];
  const client = (Service: grpc.ServiceClientConstructor, identity: string | undefined) => {
    const c = new Service(`127.0.0.1:${controlPlane.grpcPort}`, clientCredentials(identity));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    execFileSync(repoPath('deploy/tls/make-certs.sh'), [certs], { stdio: 'ignore' });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=secure.acme.test',
        '-addext',
        'subjectAltName=DNS:secure.acme.test',
        '-keyout',
        tenantKey,
        '-out',
        tenantCert,
      ],
      { stdio: 'ignore' },
    );
    nats = await NatsServer.start();
    backend = await startGrpcEcho(0, { revision: 'main', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    listenerPorts = { http: await freePort(), https: await freePort() };
    // The tenant's listeners on free loopback ports, so the Envoy below binds nothing fixed.
    const controlPlaneModule = (env: Record<string, string>) =>
      createControlPlaneService(loadConfig(controlPlaneEnv, env), {
        translate: {
          http: { address: '127.0.0.1', port: listenerPorts.http, publicPort: 80 },
          https: { address: '127.0.0.1', port: listenerPorts.https, publicPort: 443 },
        },
      });
    controlPlane = await startTlsHost(nats, 'control-plane', controlPlaneModule, mtls('control-plane'));
    const api = new Api(controlPlane.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['secure.acme.test'],
      revisions: [{ name: 'main', endpoints: [{ address: '127.0.0.1', port: backend.port }] }],
      tls: { certificateChain: readFileSync(tenantCert, 'utf8'), privateKey: readFileSync(tenantKey, 'utf8') },
    });
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await controlPlane?.stop();
    await backend?.close();
    await nats?.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  const forbiddenRequests = async () => {
    const metrics = await controlPlane.host.runtime.observability.registry.getSingleMetric('switchyard_xds_bad_requests_total')?.get();
    return metrics?.values.find((v) => v.labels.reason === 'forbidden')?.value ?? 0;
  };

  it('refuses a client without a certificate at the handshake, and a plaintext client', async () => {
    for (const credentials of [clientCredentials(undefined), grpc.credentials.createInsecure()]) {
      const c = new ads(`127.0.0.1:${controlPlane.grpcPort}`, credentials);
      clients.push(c);
      const stream = new AdsStream(c, 'anonymous');
      stream.request(TypeUrl.Secret, ['*']);
      await eventually(() => stream.status !== undefined);
      expect(stream.status?.code).toBe(grpc.status.UNAVAILABLE);
      expect(stream.responses).toEqual([]);
    }
  });

  it('gives a non-edge identity clusters and endpoints but never a secret, on ADS or SDS', async () => {
    const stream = new AdsStream(client(ads, 'tools'), 'tools-1');
    const before = await forbiddenRequests();
    stream.request(TypeUrl.Secret, ['*']);
    stream.request(TypeUrl.Cluster, []);
    const [clusters] = await eventually(() => stream.of(TypeUrl.Cluster).length > 0 && stream.of(TypeUrl.Cluster));
    const names = (clusters?.resources ?? []).map((r) => (Cluster.decode(r.value) as unknown as { name: string }).name);
    expect(names.length).toBeGreaterThan(0);
    stream.request(TypeUrl.ClusterLoadAssignment, names);
    // The endpoints answer comes after the secret request was handled on the same stream.
    await eventually(() => stream.of(TypeUrl.ClusterLoadAssignment).length > 0);
    expect(stream.of(TypeUrl.Secret)).toEqual([]);
    // Streams served by an xDS worker process report their metrics within a status interval.
    await eventually(async () => (await forbiddenRequests()) === before + 1);
    stream.close();

    const sdsClient = client(sds, 'tools') as unknown as Methods;
    const sdsStream = sdsClient.StreamSecrets!() as Duplex;
    const status = new Promise<grpc.StatusObject>((resolve) => sdsStream.on('status', resolve));
    sdsStream.on('error', () => undefined);
    sdsStream.on('data', () => expect.unreachable('a secret reached a non-edge client'));
    sdsStream.write({ node: { id: 'tools-1' }, resource_names: ['*'] });
    expect((await status).code).toBe(grpc.status.PERMISSION_DENIED);

    const fetched = await new Promise<grpc.ServiceError | null>((resolve) =>
      sdsClient.FetchSecrets!({ node: { id: 'tools-1' }, type_url: TypeUrl.Secret }, (err: grpc.ServiceError | null) => resolve(err)),
    );
    expect(fetched?.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('gives the edge identity the tenant’s TLS secret', async () => {
    const stream = new AdsStream(client(ads, 'edge'), 'edge-1');
    stream.request(TypeUrl.Secret, ['*']);
    const [response] = await eventually(() => stream.of(TypeUrl.Secret).length > 0 && stream.of(TypeUrl.Secret));
    const secrets = (response?.resources ?? []).map(
      (r) => Secret.decode(r.value) as unknown as { tls_certificate: { private_key: { inline_string: string } } },
    );
    expect(secrets).toHaveLength(1);
    expect(secrets[0]?.tls_certificate.private_key.inline_string).toBe(readFileSync(tenantKey, 'utf8'));
    stream.close();
  });

  describe('with a real Envoy and deploy/envoy/bootstrap.yaml', () => {
    let statsSinkStack: TlsHost;
    let eventStreamerStack: TlsHost;
    let envoy: ChildProcess | undefined;
    let adminUrl = '';
    const work = mkdtempSync(join(tmpdir(), 'switchyard-envoy-'));

    beforeAll(async () => {
      statsSinkStack = await startTlsHost(nats, 'stats-sink', statsSink, mtls('stats-sink'));
      eventStreamerStack = await startTlsHost(nats, 'event-streamer', eventStreamer, mtls('event-streamer'));
      const ports: Record<string, number> = {
        'control-plane': controlPlane.grpcPort,
        'stats-sink': statsSinkStack.grpcPort,
        'event-streamer': eventStreamerStack.grpcPort,
      };
      const adminPort = await freePort();
      adminUrl = `http://127.0.0.1:${adminPort}`;
      // The shipped bootstrap with only what differs on this machine: addresses, the admin
      // port, where the edge certificate and the event files are.
      const text = readFileSync(repoPath('deploy/envoy/bootstrap.yaml'), 'utf8')
        .replaceAll('/etc/switchyard/tls/', `${join(certs, 'edge')}/`)
        .replaceAll('/var/log/envoy/', `${work}/`);
      const bootstrap = parse(text) as {
        admin: { address: { socket_address: { port_value: number } } };
        static_resources: { clusters: { name: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: unknown }[] }[] } }[] };
      };
      bootstrap.admin.address.socket_address.port_value = adminPort;
      for (const cluster of bootstrap.static_resources.clusters) {
        const port = ports[cluster.name];
        if (port === undefined) continue;
        cluster.load_assignment.endpoints = [
          { lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] },
        ];
      }
      const file = join(work, 'bootstrap.yaml');
      writeFileSync(file, stringify(bootstrap));
      envoy = spawn(
        envoyBinary().path,
        [
          '-c',
          file,
          '--service-node',
          'envoy-mtls',
          '--service-cluster',
          'switchyard-edge',
          '--concurrency',
          '1',
          '--base-id',
          String(40_000 + (process.pid % 20_000)),
          '--disable-hot-restart',
          '-l',
          'warning',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      envoy.stderr?.on('data', () => undefined);
    }, 60_000);

    afterAll(async () => {
      if (envoy !== undefined && envoy.exitCode === null) {
        const exited = new Promise((resolve) => envoy?.once('exit', resolve));
        envoy.kill('SIGTERM');
        await exited;
      }
      await statsSinkStack?.stop();
      await eventStreamerStack?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    const stat = async (name: string) => {
      const text = await (await fetch(`${adminUrl}/stats?filter=^${name.replaceAll('.', '\\.')}$`)).text();
      return Number(/: (\d+)/.exec(text)?.[1] ?? NaN);
    };

    it('connects to the control plane over mutual TLS (control_plane.connected_state 1)', async () => {
      await eventually(async () => (await stat('control_plane.connected_state')) === 1, 30_000, 200);
      // The control plane knows it by its node id: the stream carries xDS requests, not just a handshake.
      const api = new Api(controlPlane.apiUrl);
      await eventually(async () => JSON.stringify(await api.ok('GET', '/v1/nodes')).includes('envoy-mtls'), 10_000, 100);
    }, 60_000);

    it('streams metrics and load reports to the stats-sink and takes health checks from the event-streamer over mutual TLS', async () => {
      await eventually(
        async () => {
          const health = (await (await fetch(`${statsSinkStack.adminUrl}/healthz`)).json()) as { 'stats-sink'?: { streams: number } };
          return (health['stats-sink']?.streams ?? 0) > 0;
        },
        30_000,
        200,
      );
      await eventually(
        async () => {
          const checks = (await (await fetch(`${eventStreamerStack.adminUrl}/v1/health-checks`)).json()) as { envoys: { node: string }[] };
          return checks.envoys.some((e) => JSON.stringify(e.node).includes('envoy-mtls'));
        },
        30_000,
        200,
      );
    }, 60_000);
  });
});
