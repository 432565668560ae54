import type { ProtoObject } from '../../resources.js';
import type { ListenerOptions } from '../desired-state.js';
import type { ServiceIR } from '../ir.js';
import type { BuildContext } from './feature.js';
import { features } from './features/index.js';
import { adsSource } from './proto.js';
import { routeAppliesTo, routeMatch } from './route-match.js';

/** The virtual host of one service: its domains, and its routes split over revisions by weight. */
export function buildVirtualHost(service: ServiceIR, context: BuildContext): ProtoObject {
  const routes = service.routes
    .filter((route) => routeAppliesTo(route, context.group))
    .map((ir) => {
      const action = trafficAction(service.traffic);
      for (const feature of features) feature.routeAction?.(action, ir, service, context);
      const route: ProtoObject = { name: ir.name, match: routeMatch(ir, context.group), route: action };
      for (const feature of features) feature.route?.(route, ir, service, context);
      return route;
    });
  const virtualHost: ProtoObject = { name: service.id, domains: service.domains, routes };
  for (const feature of features) feature.virtualHost?.(virtualHost, service, context);
  return virtualHost;
}

/**
 * A route's upstream: the revision's cluster when one revision takes all traffic, else the
 * split by weight. A weighted cluster is a route entry of its own in Envoy, built again on every
 * rebuild of the merged route table; the plain form cost about a fifth less Envoy CPU per
 * virtual-host update at 10,000 routes (docs/translation.md).
 */
function trafficAction(traffic: ServiceIR['traffic']): ProtoObject {
  const [only] = traffic;
  if (traffic.length === 1 && only !== undefined) return { cluster: only.cluster };
  return { weighted_clusters: { clusters: traffic.map((entry) => ({ name: entry.cluster, weight: { value: entry.weight } })) } };
}

/** On the plain-HTTP listener, a TLS service that asked for it answers every request with a redirect to HTTPS. */
export function buildRedirectVirtualHost(service: ServiceIR, https: ListenerOptions): ProtoObject {
  return {
    name: service.id,
    domains: service.domains,
    routes: [
      {
        name: `${service.id}_https_redirect`,
        match: { prefix: '/' },
        redirect: { https_redirect: true, ...(https.publicPort === 443 ? {} : { port_redirect: https.publicPort }) },
      },
    ],
  };
}

/**
 * The forwarding headers, set by the router on every request and overwriting what a client
 * sent, so an application can trust them (App Runner roadmap #52 asks for X-Forwarded-Host and
 * -Port). The route configuration's header rules apply after the virtual hosts', so no tenant
 * rule can override these (the spec refuses x-forwarded-* names anyway). With trusted proxies
 * in front (`trustedHops`), Envoy derives the client address from their X-Forwarded-For.
 */
function forwardedHeaders(scheme: 'http' | 'https', listener: ListenerOptions): ProtoObject[] {
  const set = (key: string, value: string) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  return [
    set('x-forwarded-for', '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%'),
    set('x-forwarded-proto', scheme),
    set('x-forwarded-host', '%REQ(:AUTHORITY)%'),
    set('x-forwarded-port', String(listener.publicPort)),
  ];
}

/**
 * The route configuration of one of Envoy's shared listeners (named like the listener and its
 * scheme). It holds no virtual host itself: each service's comes over VHDS on the same ADS
 * stream, so a change re-sends that service's virtual host alone and a virtual host Envoy
 * rejects stops no other (see docs/translation.md, "One route resource per service"). While
 * no virtual host is in its namespace it holds an empty list instead of VHDS (Envoy's VHDS
 * init would wait for a first one).
 */
export function sharedRouteConfig(name: 'http' | 'https', listener: ListenerOptions, vhds: boolean): ProtoObject {
  const headers = { request_headers_to_add: forwardedHeaders(name, listener) };
  return vhds ? { name, vhds: { config_source: adsSource() }, ...headers } : { name, virtual_hosts: [], ...headers };
}

/** A virtual host as a VHDS resource of a shared route configuration: named `<route configuration>/<service id>`, as Envoy's namespace matching needs. */
export function vhdsVirtualHost(routeConfig: 'http' | 'https', virtualHost: ProtoObject): ProtoObject {
  return { ...virtualHost, name: `${routeConfig}/${virtualHost.name as string}` };
}
