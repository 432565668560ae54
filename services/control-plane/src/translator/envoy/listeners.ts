import type { ProtoObject } from '../../resources.js';
import type { ListenerOptions, TranslateOptions } from '../desired-state.js';
import type { ServiceIR } from '../ir.js';
import { features } from './features/index.js';
import { EnvoyType, adsSource, duration, typed, wrapped } from './proto.js';
import { scopeKeyFilter, scopedRouting } from './scopes.js';

/** Names of Envoy's shared listeners (and of their connection managers' stats). */
export const EnvoyListener = { http: 'http', https: 'https' } as const;

const routerFilter = (fields: ProtoObject = {}) => ({ name: 'envoy.filters.http.router', typed_config: typed(EnvoyType.Router, fields) });

/**
 * The HTTP connection manager of both shared listeners, hardened as Envoy's edge best
 * practices advise: Envoy is the edge (`use_remote_address`, so it sets X-Forwarded-Proto
 * from the connection), paths are normalized and slashes merged before routing, escaped
 * slashes are unescaped with a redirect, headers with underscores are rejected, and header,
 * HTTP/2 stream and window sizes are bounded. Request IDs are always generated here, never
 * taken from the client. Routes are scoped per service (scopes.ts).
 */
function connectionManager(name: 'http' | 'https', options: TranslateOptions): ProtoObject {
  const hcm: ProtoObject = {
    stat_prefix: name,
    codec_type: 'AUTO',
    ...scopedRouting(options[name]),
    use_remote_address: wrapped(true),
    xff_num_trusted_hops: options.trustedHops,
    generate_request_id: wrapped(true),
    preserve_external_request_id: false,
    always_set_request_id_in_response: true,
    normalize_path: wrapped(true),
    merge_slashes: true,
    path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
    strip_any_host_port: true,
    common_http_protocol_options: {
      idle_timeout: duration(3_600_000),
      headers_with_underscores_action: 'REJECT_REQUEST',
      max_headers_count: wrapped(100),
    },
    max_request_headers_kb: wrapped(60),
    http2_protocol_options: {
      max_concurrent_streams: wrapped(100),
      initial_stream_window_size: wrapped(65_536),
      initial_connection_window_size: wrapped(1_048_576),
    },
    // No request_timeout: it would cut streaming uploads and client-streaming gRPC calls;
    // routes carry the per-service timeouts, and slow headers are bounded here.
    request_headers_timeout: duration(10_000),
    stream_idle_timeout: duration(300_000),
    upgrade_configs: [{ upgrade_type: 'websocket' }],
  };
  for (const feature of features) feature.connectionManager?.(hcm, options);
  hcm.http_filters = [
    scopeKeyFilter(),
    ...features.flatMap((feature) => (feature.httpFilter ? [feature.httpFilter(options)] : [])),
    routerFilter({ suppress_envoy_headers: true }),
  ];
  return hcm;
}

const connectionManagerFilter = (name: 'http' | 'https', options: TranslateOptions) => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: typed(EnvoyType.HttpConnectionManager, connectionManager(name, options)),
});

function socketAddress(listener: ListenerOptions): ProtoObject {
  return { socket_address: { address: listener.address, port_value: listener.port } };
}

/** The plain-HTTP listener: always present, valid with zero services (an empty route configuration answers 404). */
export function httpListener(options: TranslateOptions): ProtoObject {
  return {
    name: EnvoyListener.http,
    address: socketAddress(options.http),
    per_connection_buffer_limit_bytes: wrapped(32_768),
    filter_chains: [{ name: EnvoyListener.http, filters: [connectionManagerFilter(EnvoyListener.http, options)] }],
  };
}

/**
 * The HTTPS listener: one filter chain per TLS service, chosen by SNI among its domains, with
 * its certificate from SDS. Present only while some service has TLS, since a listener without
 * filter chains is invalid; adding or removing a chain drains only that chain's connections.
 */
export function httpsListener(services: readonly ServiceIR[], options: TranslateOptions): ProtoObject | undefined {
  const filter = connectionManagerFilter(EnvoyListener.https, options);
  const filterChains = services.flatMap((service) => {
    if (service.tls === undefined) return [];
    return [
      {
        name: service.id,
        filter_chain_match: { server_names: service.domains },
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: typed(EnvoyType.DownstreamTlsContext, {
            common_tls_context: {
              tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
              alpn_protocols: ['h2', 'http/1.1'],
              tls_certificate_sds_secret_configs: [{ name: service.tls.secretName, sds_config: adsSource() }],
            },
          }),
        },
        filters: [filter],
      },
    ];
  });
  if (filterChains.length === 0) return undefined;
  return {
    name: EnvoyListener.https,
    address: socketAddress(options.https),
    per_connection_buffer_limit_bytes: wrapped(32_768),
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: typed(EnvoyType.TlsInspector) }],
    filter_chains: filterChains,
  };
}

/** The certificate of a TLS service, served over SDS. */
export function tlsSecret(tls: NonNullable<ServiceIR['tls']>): ProtoObject {
  return {
    name: tls.secretName,
    tls_certificate: { certificate_chain: { inline_string: tls.certificateChain }, private_key: { inline_string: tls.privateKey } },
  };
}

/**
 * For proxyless gRPC clients: a listener named exactly as the domain an `xds:///<domain>`
 * target asks for, holding only what grpc-js-xds accepts (an RDS reference and the router
 * filter). Wildcard domains get no listener: a listener name cannot be a pattern and a client
 * asks for one concrete name, so gRPC clients reach a service through its concrete domains.
 */
export function grpcApiListener(domain: string, routeConfigName: string): ProtoObject {
  return {
    name: domain,
    api_listener: {
      api_listener: typed(EnvoyType.HttpConnectionManager, {
        rds: { route_config_name: routeConfigName, config_source: adsSource() },
        http_filters: [routerFilter()],
      }),
    },
  };
}
