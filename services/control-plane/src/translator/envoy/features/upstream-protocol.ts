import type { Feature } from '../feature.js';
import { EnvoyType, typed, wrapped } from '../proto.js';

/**
 * HTTP/1.1 to instances of http services, HTTP/2 to grpc services, with the stream and
 * connection windows and per-connection buffer of Envoy's edge best practices.
 */
export const upstreamProtocol: Feature = {
  name: 'upstream-protocol',
  cluster(cluster, service, { group }) {
    if (group !== 'envoy') return;
    cluster.per_connection_buffer_limit_bytes = wrapped(32_768);
    cluster.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(EnvoyType.HttpProtocolOptions, {
        explicit_http_config:
          service.protocol === 'grpc'
            ? {
                http2_protocol_options: { initial_stream_window_size: wrapped(65_536), initial_connection_window_size: wrapped(1_048_576) },
              }
            : { http_protocol_options: {} },
      }),
    };
  },
};
