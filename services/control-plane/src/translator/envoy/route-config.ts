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
    .map((route) => {
      const action: ProtoObject = {
        weighted_clusters: { clusters: service.traffic.map((entry) => ({ name: entry.cluster, weight: { value: entry.weight } })) },
      };
      for (const feature of features) feature.routeAction?.(action, route, service, context);
      return { name: route.name, match: routeMatch(route, context.group), route: action };
    });
  const virtualHost: ProtoObject = { name: service.id, domains: service.domains, routes };
  for (const feature of features) feature.virtualHost?.(virtualHost, service, context);
  return virtualHost;
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
