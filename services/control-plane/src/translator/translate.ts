import { TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import type { ProtoObject, ResourceSet, ResourcesByName } from '../resources.js';
import { buildIR } from './build-ir.js';
import { defaultTranslateOptions, type DesiredState, type TranslateOptions, type TranslationResult } from './desired-state.js';
import { isWildcard } from './domains.js';
import { buildCluster, buildLoadAssignment } from './envoy/cluster.js';
import type { BuildContext } from './envoy/feature.js';
import { EnvoyListener, grpcApiListener, httpListener, httpsListener, tlsSecret } from './envoy/listeners.js';
import { buildRedirectVirtualHost, buildVirtualHost, forwardedHeaders } from './envoy/route-config.js';
import type { ServiceIR } from './ir.js';

/**
 * Desired state → Envoy resources, for each node group: a pure function (no I/O, time given
 * in the state). Invalid or conflicting services are left out with errors; everything else
 * translates as if they did not exist.
 */
export function translate(state: DesiredState, options: TranslateOptions = defaultTranslateOptions): TranslationResult {
  const ir = buildIR(state, options);
  const result: TranslationResult = {
    snapshot: { envoy: envoyResources(ir.services, options), grpc: grpcResources(ir.services, options) },
    errors: ir.errors,
  };
  if (ir.nextChangeAt !== undefined) result.nextChangeAt = ir.nextChangeAt;
  return result;
}

/** The RouteConfiguration a gRPC service's listeners share. */
export function grpcRouteConfigName(service: Pick<ServiceIR, 'id'>): string {
  return `grpc_${service.id}`;
}

class ResourceSetBuilder {
  private readonly set: ResourceSet = new Map<XdsTypeUrl, ResourcesByName>(Object.values(TypeUrl).map((url) => [url, new Map()]));

  /** Resources are named by `name`, load assignments by `cluster_name`. */
  add(typeUrl: XdsTypeUrl, resource: ProtoObject): void {
    const name = (typeUrl === TypeUrl.ClusterLoadAssignment ? resource.cluster_name : resource.name) as string;
    (this.set.get(typeUrl) as ResourcesByName).set(name, resource);
  }

  addCluster(revision: ServiceIR['revisions'][number], service: ServiceIR, context: BuildContext): void {
    this.add(TypeUrl.Cluster, buildCluster(revision, service, context));
    this.add(TypeUrl.ClusterLoadAssignment, buildLoadAssignment(revision));
  }

  /** Resources sorted by name within each type, so equal states give identical output. */
  build(): ResourceSet {
    for (const [url, resources] of this.set) this.set.set(url, new Map([...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
    return this.set;
  }
}

function envoyResources(services: readonly ServiceIR[], options: TranslateOptions): ResourceSet {
  const context: BuildContext = { group: 'envoy', options };
  const resources = new ResourceSetBuilder();
  const httpHosts: ProtoObject[] = [];
  const httpsHosts: ProtoObject[] = [];
  for (const service of services) {
    for (const revision of service.revisions) resources.addCluster(revision, service, context);
    const virtualHost = buildVirtualHost(service, context);
    if (service.tls === undefined) {
      httpHosts.push(virtualHost);
      continue;
    }
    httpsHosts.push(virtualHost);
    httpHosts.push(service.tls.redirectHttp ? buildRedirectVirtualHost(service, options.https) : virtualHost);
    resources.add(TypeUrl.Secret, tlsSecret(service.tls));
  }
  resources.add(TypeUrl.Listener, httpListener(options));
  resources.add(TypeUrl.RouteConfiguration, {
    name: EnvoyListener.http,
    virtual_hosts: httpHosts,
    request_headers_to_add: forwardedHeaders('http', options.http),
  });
  const https = httpsListener(services, options);
  if (https !== undefined) {
    resources.add(TypeUrl.Listener, https);
    resources.add(TypeUrl.RouteConfiguration, {
      name: EnvoyListener.https,
      virtual_hosts: httpsHosts,
      request_headers_to_add: forwardedHeaders('https', options.https),
    });
  }
  return resources.build();
}

/** gRPC services only: a proxyless gRPC client cannot call an HTTP/1 service. */
function grpcResources(services: readonly ServiceIR[], options: TranslateOptions): ResourceSet {
  const context: BuildContext = { group: 'grpc', options };
  const resources = new ResourceSetBuilder();
  for (const service of services) {
    if (service.protocol !== 'grpc') continue;
    for (const revision of service.revisions) resources.addCluster(revision, service, context);
    const routeConfigName = grpcRouteConfigName(service);
    resources.add(TypeUrl.RouteConfiguration, { name: routeConfigName, virtual_hosts: [buildVirtualHost(service, context)] });
    for (const domain of service.domains) {
      if (!isWildcard(domain)) resources.add(TypeUrl.Listener, grpcApiListener(domain, routeConfigName));
    }
  }
  return resources.build();
}
