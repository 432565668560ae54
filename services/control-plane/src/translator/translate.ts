import { TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import type { NodeGroup, ProtoObject, ResourceSet, ResourcesByName } from '../resources.js';
import { buildIR } from './build-ir.js';
import { defaultTranslateOptions, type DesiredState, type TranslateOptions, type TranslationResult } from './desired-state.js';
import { isWildcard } from '../domains.js';
import { buildCluster, buildLoadAssignment } from './envoy/cluster.js';
import { grpcApiListener, httpListener, httpsListener, tlsSecret } from './envoy/listeners.js';
import { buildVirtualHost, serviceRouteConfig } from './envoy/route-config.js';
import { scopeKeyExtension, serviceScopes } from './envoy/scopes.js';
import type { EndpointIR, ServiceIR } from './ir.js';

/**
 * Desired state → Envoy resources, for each node group: a pure function (no I/O, time given
 * in the state). Invalid or conflicting services are left out with errors; everything else
 * translates as if they did not exist.
 *
 * Resources are immutable and shared between results: a resource that depends only on an
 * unchanged service record and the same options object is the same object as last time, so a
 * consumer can tell unchanged resources by identity (`===`) before encoding anything.
 */
export function translate(state: DesiredState, options: TranslateOptions = defaultTranslateOptions): TranslationResult {
  const ir = buildIR(state, options);
  const result: TranslationResult = {
    snapshot: {
      envoy: envoyResources(ir.services, ir.endpoints, options),
      grpc: grpcResources(ir.services, ir.endpoints, options),
    },
    errors: ir.errors,
    accepted: ir.accepted,
    burst: ir.burst,
  };
  if (ir.nextChangeAt !== undefined) result.nextChangeAt = ir.nextChangeAt;
  return result;
}

/** The RouteConfiguration a gRPC service's listeners share. */
export function grpcRouteConfigName(service: Pick<ServiceIR, 'id'>): string {
  return `grpc_${service.id}`;
}

/** What one service contributes to a node group, apart from its endpoints. */
interface ServiceResources {
  clusters: ProtoObject[];
  virtualHost: ProtoObject;
  /** The service's own route configuration. */
  routeConfig: ProtoObject;
  /** Envoy: the scopes that pick the route configuration (per domain and scheme). */
  scopes: ProtoObject[];
  secret?: ProtoObject;
  /** gRPC: listeners named by the service's domains. */
  listeners: ProtoObject[];
}

const built = new WeakMap<TranslateOptions, Record<NodeGroup, WeakMap<ServiceIR, ServiceResources>>>();

function serviceResources(service: ServiceIR, group: NodeGroup, options: TranslateOptions): ServiceResources {
  let byGroup = built.get(options);
  if (byGroup === undefined) {
    byGroup = { envoy: new WeakMap(), grpc: new WeakMap() };
    built.set(options, byGroup);
  }
  const known = byGroup[group].get(service);
  if (known !== undefined) return known;
  const context = { group, options };
  const virtualHost = buildVirtualHost(service, context);
  const resources: ServiceResources = {
    clusters: service.revisions.map((revision) => buildCluster(revision, service, context)),
    virtualHost,
    routeConfig:
      group === 'envoy'
        ? serviceRouteConfig(service, virtualHost, options)
        : { name: grpcRouteConfigName(service), virtual_hosts: [virtualHost] },
    scopes: group === 'envoy' ? serviceScopes(service) : [],
    listeners: [],
  };
  if (group === 'envoy' && service.tls !== undefined) resources.secret = tlsSecret(service.tls);
  if (group === 'grpc') {
    resources.listeners = service.domains
      .filter((domain) => !isWildcard(domain))
      .map((domain) => grpcApiListener(domain, grpcRouteConfigName(service)));
  }
  byGroup[group].set(service, resources);
  return resources;
}

/** What Envoy's shared listeners get whatever the services: built once per options object, so diffing them costs nothing. */
interface SharedResources {
  httpListener: ProtoObject;
}

const sharedResources = new WeakMap<TranslateOptions, SharedResources>();

function sharedResourcesFor(options: TranslateOptions): SharedResources {
  let shared = sharedResources.get(options);
  if (shared === undefined) {
    shared = { httpListener: httpListener(options) };
    sharedResources.set(options, shared);
  }
  return shared;
}

class ResourceSetBuilder {
  private readonly set: ResourceSet = new Map<XdsTypeUrl, ResourcesByName>(Object.values(TypeUrl).map((url) => [url, new Map()]));

  /** Resources are named by `name`, load assignments by `cluster_name`. */
  add(typeUrl: XdsTypeUrl, resource: ProtoObject): void {
    const name = (typeUrl === TypeUrl.ClusterLoadAssignment ? resource.cluster_name : resource.name) as string;
    (this.set.get(typeUrl) as ResourcesByName).set(name, resource);
  }

  addService(service: ServiceIR, resources: ServiceResources, endpoints: ReadonlyMap<string, EndpointIR[]>): void {
    for (const cluster of resources.clusters) this.add(TypeUrl.Cluster, cluster);
    for (const { cluster } of service.revisions)
      this.add(TypeUrl.ClusterLoadAssignment, buildLoadAssignment(cluster, endpoints.get(cluster) ?? []));
    for (const listener of resources.listeners) this.add(TypeUrl.Listener, listener);
    this.add(TypeUrl.RouteConfiguration, resources.routeConfig);
    for (const scope of resources.scopes) this.add(TypeUrl.ScopedRouteConfiguration, scope);
    if (resources.secret) this.add(TypeUrl.Secret, resources.secret);
  }

  /** Resources sorted by name within each type, so equal states give identical output. */
  build(): ResourceSet {
    for (const [url, resources] of this.set) this.set.set(url, new Map([...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
    return this.set;
  }
}

function envoyResources(
  services: readonly ServiceIR[],
  endpoints: ReadonlyMap<string, EndpointIR[]>,
  options: TranslateOptions,
): ResourceSet {
  const set = new ResourceSetBuilder();
  for (const service of services) set.addService(service, serviceResources(service, 'envoy', options), endpoints);
  const shared = sharedResourcesFor(options);
  set.add(TypeUrl.Listener, shared.httpListener);
  set.add(TypeUrl.ExtensionConfig, scopeKeyExtension(services));
  const https = httpsListener(services, options);
  if (https !== undefined) set.add(TypeUrl.Listener, https);
  return set.build();
}

/** gRPC services only: a proxyless gRPC client cannot call an HTTP/1 service. */
function grpcResources(
  services: readonly ServiceIR[],
  endpoints: ReadonlyMap<string, EndpointIR[]>,
  options: TranslateOptions,
): ResourceSet {
  const set = new ResourceSetBuilder();
  for (const service of services) {
    if (service.protocol === 'grpc') set.addService(service, serviceResources(service, 'grpc', options), endpoints);
  }
  return set.build();
}
