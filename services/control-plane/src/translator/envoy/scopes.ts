import { isWildcard } from '../../domains.js';
import type { ProtoObject } from '../../resources.js';
import type { ListenerOptions } from '../desired-state.js';
import type { ServiceIR } from '../ir.js';
import { EnvoyType, adsSource, typed } from './proto.js';

/**
 * The one owner of route scoping on Envoy's shared listeners. Each service has a
 * RouteConfiguration of its own, and Envoy picks the one for a request by a scope key: the
 * host pattern the request's host falls under and the scheme it arrived with (scoped RDS).
 * A change to a service rebuilds its own route configuration only, a configuration Envoy
 * rejects stops no other, and both listeners share a service's configuration, so its local
 * rate limit is one bucket (docs/translation.md, "One route configuration per service").
 *
 * The key is built in two steps. Before routing, the connection manager copies the host into
 * the key header (an early header mutation, which also overwrites whatever a client sent):
 * that is the whole key for an exact domain in lower case. Then a Lua filter, whose config
 * comes over ECDS, lower-cases the host and replaces it with `*.<parent>` when a wildcard
 * covers it; only then does it clear the route cache so Envoy picks the scope again.
 * Domains never overlap between services (domains.ts), so a host falls under at most one
 * service's patterns, and the nearest wildcard parent is the only one.
 */

/** The request header the scope key is read from; it never reaches an instance. */
export const scopeKeyHeader = 'x-switchyard-scope';

/** The ECDS resource (and HTTP filter name) of the Lua filter that finishes the scope key. */
export const scopeKeyFilterName = 'switchyard.scope_key';

/**
 * The connection manager fields that route by scope: `scoped_routes` (key fragments: the key
 * header and the scheme) and the header changes made before routing, namely the first scope
 * key (the host) and X-Forwarded-Port (the port clients connect to, which differs per
 * listener), both overwriting what a client sent.
 */
export function scopedRouting(listener: ListenerOptions): ProtoObject {
  const fragment = (name: string) => ({ header_value_extractor: { name, element_separator: ',', index: 0 } });
  const overwrite = (key: string, value: string) => ({ append: { header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } });
  return {
    scoped_routes: {
      name: 'routes',
      scope_key_builder: { fragments: [fragment(scopeKeyHeader), fragment('x-forwarded-proto')] },
      rds_config_source: adsSource(),
      scoped_rds: { scoped_rds_config_source: adsSource() },
    },
    early_header_mutation_extensions: [
      {
        name: 'envoy.http.early_header_mutation.header_mutation',
        typed_config: typed(EnvoyType.EarlyHeaderMutation, {
          mutations: [overwrite(scopeKeyHeader, '%REQ(:AUTHORITY)%'), overwrite('x-forwarded-port', String(listener.publicPort))],
        }),
      },
    ],
  };
}

/** The HTTP filter that finishes the scope key, its config from ECDS (no listener drain when it changes). */
export function scopeKeyFilter(): ProtoObject {
  return {
    name: scopeKeyFilterName,
    config_discovery: { config_source: adsSource(), type_urls: [`type.googleapis.com/${EnvoyType.Lua}`] },
  };
}

const scopeKeyScript = (
  wildcardParents: readonly string[],
) => `local wildcards = {${wildcardParents.map((p) => `[${JSON.stringify(p)}] = true`).join(', ')}}
local any_wildcard = next(wildcards) ~= nil

function envoy_on_request(handle)
  local headers = handle:headers()
  local host = string.lower(headers:get(":authority") or "")
  local key = host
  if any_wildcard then
    local dot = string.find(host, ".", 1, true)
    while dot ~= nil do
      local parent = string.sub(host, dot + 1)
      if wildcards[parent] then
        key = "*." .. parent
        break
      end
      dot = string.find(host, ".", dot + 1, true)
    end
  end
  if headers:get("${scopeKeyHeader}") ~= key then
    headers:replace("${scopeKeyHeader}", key)
    handle:clearRouteCache()
  end
end
`;

let lastExtension: { key: string; resource: ProtoObject } | undefined;

/**
 * The scope-key filter's config (an ECDS TypedExtensionConfig) for the wildcard domains of
 * all services. The same set gives the same object, so an unchanged one costs nothing to diff.
 */
export function scopeKeyExtension(services: readonly ServiceIR[]): ProtoObject {
  const parents = [...new Set(services.flatMap((service) => service.domains.filter(isWildcard).map((domain) => domain.slice(2))))].sort();
  const key = parents.join(' ');
  if (lastExtension?.key !== key) {
    lastExtension = {
      key,
      resource: {
        name: scopeKeyFilterName,
        typed_config: typed(EnvoyType.Lua, { default_source_code: { inline_string: scopeKeyScript(parents) }, stat_prefix: 'scope_key' }),
      },
    };
  }
  return lastExtension.resource;
}

/**
 * A service's scopes, all pointing at its own route configuration: one per domain and scheme
 * it is served on, plain HTTP always (where a redirecting service answers with its redirect
 * route), HTTPS when it has TLS. Named `<scheme>/<domain>`.
 */
export function serviceScopes(service: ServiceIR): ProtoObject[] {
  const scope = (scheme: 'http' | 'https', domain: string) => ({
    name: `${scheme}/${domain}`,
    route_configuration_name: service.id,
    key: { fragments: [{ string_key: domain }, { string_key: scheme }] },
  });
  return service.domains.flatMap((domain) => [scope('http', domain), ...(service.tls === undefined ? [] : [scope('https', domain)])]);
}
