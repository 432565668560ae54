import { TypeUrl, type XdsTypeUrl } from '@switchyard/shared';

/**
 * Order in which additions go out on one ADS stream: clusters before their endpoints, both
 * before the listeners and routes that point at them (Consul's xDSUpdateOrder); a filter's
 * config before the listener that names it, a route configuration before a scope that
 * points at it. Removals go out in the reverse order, after every addition.
 */
export const pushOrder: readonly XdsTypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Secret,
  TypeUrl.ExtensionConfig,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.ScopedRouteConfiguration,
];

/** Short names for metric labels, logs and the admin API. */
export const typeNames: Record<XdsTypeUrl, 'cds' | 'eds' | 'sds' | 'ecds' | 'lds' | 'rds' | 'srds'> = {
  [TypeUrl.Cluster]: 'cds',
  [TypeUrl.ClusterLoadAssignment]: 'eds',
  [TypeUrl.Secret]: 'sds',
  [TypeUrl.ExtensionConfig]: 'ecds',
  [TypeUrl.Listener]: 'lds',
  [TypeUrl.RouteConfiguration]: 'rds',
  [TypeUrl.ScopedRouteConfiguration]: 'srds',
};
export type TypeName = (typeof typeNames)[XdsTypeUrl];

/**
 * Types whose State-of-the-World responses carry every subscribed resource: a client treats a
 * cluster, listener or route scope missing from a response as deleted. EDS, RDS, SDS and ECDS
 * responses carry only what changed.
 */
export function isFullSetType(typeUrl: XdsTypeUrl): boolean {
  return typeUrl === TypeUrl.Cluster || typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.ScopedRouteConfiguration;
}

export function isXdsTypeUrl(value: string): value is XdsTypeUrl {
  return Object.prototype.hasOwnProperty.call(typeNames, value);
}

export type XdsMode = 'sotw' | 'delta';

/** What the control plane knows about one xDS client, from the first request's Node. */
export interface NodeInfo {
  id: string;
  cluster: string;
  userAgentName: string;
  userAgentVersion: string;
}

/** The error a client reports with a NACK (google.rpc.Status). */
export interface ErrorDetail {
  code: number;
  message: string;
}
