import type { RouteSpec, ServiceSpec } from '@switchyard/shared';

/**
 * The intermediate representation between tenants' specs and Envoy resources: only services
 * that passed every check reach it, with names and defaults resolved. The Envoy builders read
 * nothing else, so what they emit depends on validated input only. A ServiceIR depends on its
 * stored record alone and is the same object for as long as the record is; endpoints, which
 * change all the time, are kept apart.
 */

export type HeaderMatchIR = RouteSpec['match']['headers'][number];
export type QueryMatchIR = RouteSpec['match']['queryParams'][number];

export type PathMatchIR = { kind: 'prefix'; value: string } | { kind: 'path'; value: string } | { kind: 'regex'; value: string };

export interface RouteIR {
  /** `<tenant>_<service>_<route name or index>`: shown in Envoy stats and gRPC errors. */
  name: string;
  path: PathMatchIR;
  headers: HeaderMatchIR[];
  queryParams: QueryMatchIR[];
  timeoutMs: number;
}

/** EDS health status values, as Envoy names them. */
export type EndpointStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';

export interface EndpointIR {
  address: string;
  port: number;
  status: EndpointStatus;
}

export interface RevisionIR {
  name: string;
  /** `clusterName()` of this revision: the cluster and its load assignment. */
  cluster: string;
}

export interface TlsIR {
  secretName: string;
  certificateChain: string;
  privateKey: string;
  redirectHttp: boolean;
}

export interface ServiceIR {
  tenant: string;
  name: string;
  /** `<tenant>_<service>`: a stat-safe identifier (no dots) for virtual hosts, routes and stat prefixes. */
  id: string;
  protocol: ServiceSpec['protocol'];
  domains: string[];
  routes: RouteIR[];
  idleTimeoutMs: number;
  /** Absent when retries are off (0 attempts). */
  retry?: ServiceSpec['retries'];
  rateLimit?: { requestsPerSecond: number; burst: number };
  headers: ServiceSpec['headers'];
  tls?: TlsIR;
  circuitBreakers: ServiceSpec['circuitBreakers'];
  outlierDetection?: ServiceSpec['outlierDetection'];
  healthCheck: ServiceSpec['healthCheck'];
  revisions: RevisionIR[];
  /** Clusters that take traffic, weights in percent; revisions at 0 % keep their cluster (draining) but get no weight. */
  traffic: { cluster: string; weight: number }[];
}
