import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { TypeUrl, type XdsEvent } from '@switchyard/shared';
import { XdsCache, registerXdsServices, type XdsServer } from '../../src/xds/index.js';
import type { ProtoObject, ResourceSet, Snapshot } from '../../src/resources.js';
import { XdsStream, type NackRecord, type OutgoingResponse, type ResponsePolicy } from '../../src/xds/stream.js';

export const silentLogger = pino({ level: 'silent' });

export async function bind(server: grpc.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
}

export interface RunningXds {
  cache: XdsCache;
  xds: XdsServer;
  server: grpc.Server;
  port: number;
  registry: Registry;
  events: XdsEvent[];
  stop(): Promise<void>;
}

/** A real gRPC server with the xDS services on a free port (or the given one, for restarts). */
export async function startXds(
  options: { cache?: XdsCache; port?: number; maxStreamAgeMs?: number; stalledWriteMs?: number } = {},
): Promise<RunningXds> {
  const cache = options.cache ?? new XdsCache();
  const server = new grpc.Server();
  const registry = new Registry();
  const events: XdsEvent[] = [];
  const xds = registerXdsServices(server, cache, {
    logger: silentLogger,
    registry,
    onEvent: (e) => events.push(e),
    maxStreamAgeMs: options.maxStreamAgeMs,
    stalledWriteMs: options.stalledWriteMs,
  });
  const port = await bind(server, options.port);
  return {
    cache,
    xds,
    server,
    port,
    registry,
    events,
    stop: async () => {
      xds.close();
      server.forceShutdown();
    },
  };
}

/** Polls a condition until it holds or the deadline passes (no fixed sleeps). */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A backend that answers /test.Who/Name with its own name. */
export const whoService = {
  Name: {
    path: '/test.Who/Name',
    requestStream: false,
    responseStream: false,
    requestSerialize: (s: string) => Buffer.from(s),
    requestDeserialize: (b: Buffer) => b.toString(),
    responseSerialize: (s: string) => Buffer.from(s),
    responseDeserialize: (b: Buffer) => b.toString(),
  },
} satisfies grpc.ServiceDefinition;

export async function startBackend(name: string): Promise<{ port: number; stop: () => void }> {
  const server = new grpc.Server();
  server.addService(whoService, {
    Name: (_call: grpc.ServerUnaryCall<string, string>, callback: grpc.sendUnaryData<string>) => callback(null, name),
  });
  const port = await bind(server);
  return { port, stop: () => server.forceShutdown() };
}

export const WhoClient = grpc.makeGenericClientConstructor(whoService, 'Who');

export function callName(client: grpc.Client, deadlineMs = 3000): Promise<string> {
  return new Promise((resolve, reject) =>
    (
      client as unknown as {
        Name: (req: string, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: string) => void) => void;
      }
    ).Name('who', { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

/** Bootstrap for a grpc-js-xds channel, given per channel so each test client is independent. */
export function bootstrapFor(port: number, nodeId: string): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'test', locality: {} },
  });
}

export const edsConfig = { ads: {}, resource_api_version: 'V3' };

export function listener(name: string, routeName: string): ProtoObject {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: name,
        rds: { config_source: edsConfig, route_config_name: routeName },
        http_filters: [{ name: 'router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
      },
    },
  };
}

export function route(name: string, cluster: string): ProtoObject {
  return {
    name,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster } }] }],
  };
}

export function cluster(name: string, extra: ProtoObject = {}): ProtoObject {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: edsConfig },
    connect_timeout: { seconds: 1 },
    lb_policy: 'ROUND_ROBIN',
    ...extra,
  };
}

export function endpoints(clusterName: string, ports: number[]): ProtoObject {
  return {
    cluster_name: clusterName,
    endpoints: [
      {
        locality: { region: 'local', zone: 'a' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })),
      },
    ],
  };
}

export interface ConfigSpec {
  listeners?: ProtoObject[];
  routes?: ProtoObject[];
  clusters?: ProtoObject[];
  endpoints?: ProtoObject[];
  scopes?: ProtoObject[];
}

/** The same resources for both node groups (tests do not need two translations). */
export function snapshotOf(spec: ConfigSpec): Snapshot {
  const byName = (items: ProtoObject[] = [], key = 'name') => new Map(items.map((r) => [r[key] as string, r]));
  const set = (): ResourceSet =>
    new Map([
      [TypeUrl.Listener, byName(spec.listeners)],
      [TypeUrl.RouteConfiguration, byName(spec.routes)],
      [TypeUrl.Cluster, byName(spec.clusters)],
      [TypeUrl.ClusterLoadAssignment, byName(spec.endpoints, 'cluster_name')],
      [TypeUrl.ScopedRouteConfiguration, byName(spec.scopes)],
    ]);
  return { envoy: set(), grpc: set() };
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const matching = metric?.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)) ?? [];
  return matching.reduce((sum, v) => sum + v.value, 0);
}

/** A stream state machine with no gRPC around it: responses and NACKs go to the callbacks, ticks are the test's. */
export function bareStream<R>(
  policy: ResponsePolicy<R>,
  cache: XdsCache,
  send: (response: OutgoingResponse) => void,
  nacked: (nack: NackRecord) => void,
): XdsStream<R> {
  const ignore = () => undefined;
  const hooks = { send, connected: ignore, acked: ignore, nacked: (_view: unknown, nack: NackRecord) => nacked(nack) };
  return new XdsStream(1, policy, cache, { ...hooks, unknownType: ignore, staleNonce: ignore, dirty: ignore }, undefined, 0, () => 0);
}
