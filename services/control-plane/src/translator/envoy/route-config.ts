import type { ProtoObject } from '../../resources.js';
import type { ListenerOptions, TranslateOptions } from '../desired-state.js';
import type { ServiceIR } from '../ir.js';
import type { BuildContext } from './feature.js';
import { features } from './features/index.js';
import { scopeKeyHeader } from './scopes.js';
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
 * build of the route configuration; the plain form cost about a fifth less Envoy CPU per
 * update when all 10,000 routes shared one table (docs/translation.md).
 */
function trafficAction(traffic: ServiceIR['traffic']): ProtoObject {
  const [only] = traffic;
  if (traffic.length === 1 && only !== undefined) return { cluster: only.cluster };
  return { weighted_clusters: { clusters: traffic.map((entry) => ({ name: entry.cluster, weight: { value: entry.weight } })) } };
}

/**
 * For a TLS service that asked for it: a first route answering every plain-HTTP request with a
 * redirect to HTTPS (`port_redirect` when the public HTTPS port is not 443). It sits in the
 * service's own route configuration, which both schemes' scopes point at, so switching the
 * redirect on or off is one update of that configuration, never a scope moving to another
 * configuration (Envoy answers 404 until a configuration a scope newly points at arrives).
 */
function httpsRedirect(service: ServiceIR, https: ListenerOptions): ProtoObject {
  return {
    name: `${service.id}_https_redirect`,
    match: { prefix: '/', headers: [{ name: 'x-forwarded-proto', string_match: { exact: 'http' } }] },
    redirect: { https_redirect: true, ...(https.publicPort === 443 ? {} : { port_redirect: https.publicPort }) },
  };
}

/**
 * Forwarding headers the router sets on every request, overwriting what a client sent, so an
 * application can trust them (App Runner roadmap #52 asks for X-Forwarded-Host and -Port).
 * X-Forwarded-Proto is the connection manager's (from the connection, as Envoy is the edge)
 * and X-Forwarded-Port is set per listener before routing (scopes.ts). The route
 * configuration's header rules apply after the virtual host's, so no tenant rule can override
 * these (the spec refuses x-forwarded-* names anyway). With trusted proxies in front
 * (`trustedHops`), Envoy takes the client address and scheme from their headers.
 */
const forwardedHeaders: readonly ProtoObject[] = [
  { header: { key: 'x-forwarded-for', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
  { header: { key: 'x-forwarded-host', value: '%REQ(:AUTHORITY)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
];

/**
 * A service's own route configuration (named by its id), which both shared listeners reach
 * through the service's scopes. The scope key header is dropped before the request goes on.
 */
export function serviceRouteConfig(service: ServiceIR, virtualHost: ProtoObject, options: TranslateOptions): ProtoObject {
  const redirect = service.tls?.redirectHttp === true;
  return {
    name: service.id,
    virtual_hosts: [
      redirect
        ? { ...virtualHost, routes: [httpsRedirect(service, options.https), ...(virtualHost.routes as ProtoObject[])] }
        : virtualHost,
    ],
    request_headers_to_add: forwardedHeaders,
    request_headers_to_remove: [scopeKeyHeader],
  };
}
