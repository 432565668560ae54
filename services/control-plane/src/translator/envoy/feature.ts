import type { NodeGroup, ProtoObject } from '../../resources.js';
import type { TranslateOptions } from '../desired-state.js';
import type { RouteIR, ServiceIR } from '../ir.js';

export interface BuildContext {
  group: NodeGroup;
  options: TranslateOptions;
}

/**
 * One translation feature (rate limit, retries, outlier detection…): each module implements
 * the hooks it needs and patches the resource the core builders made. Hooks receive the
 * node group: proxyless gRPC clients accept a subset of Envoy's config, so a feature either
 * translates for them or leaves them alone.
 */
export interface Feature {
  name: string;
  /**
   * Adds to the HTTP connection manager of Envoy's shared listeners. Only operator options may
   * shape it, never a service: a listener change drains every connection on it.
   */
  connectionManager?(hcm: ProtoObject, options: TranslateOptions): void;
  /** An HTTP filter for Envoy's shared listeners, placed before the router; same rule as above. */
  httpFilter?(options: TranslateOptions): ProtoObject;
  virtualHost?(virtualHost: ProtoObject, service: ServiceIR, context: BuildContext): void;
  /** Patches a route's `route` action. */
  routeAction?(action: ProtoObject, route: RouteIR, service: ServiceIR, context: BuildContext): void;
  /** Patches a whole route, once every feature has patched its action. */
  route?(route: ProtoObject, ir: RouteIR, service: ServiceIR, context: BuildContext): void;
  cluster?(cluster: ProtoObject, service: ServiceIR, context: BuildContext): void;
}
