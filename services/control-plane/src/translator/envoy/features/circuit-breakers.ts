import type { Feature } from '../feature.js';
import { wrapped } from '../proto.js';

/**
 * Per-revision limits on connections, queued and active requests, and concurrent retries. gRPC
 * clients read `max_requests` (gRFC A32). A request shed by them gets Envoy's 503 with
 * `x-envoy-overloaded: true`, the signal that a retry will not help: the router's
 * `suppress_envoy_headers` would drop it, so a local-reply mapper adds it for the upstream
 * overflow flag (UO) alone.
 */
export const circuitBreakers: Feature = {
  name: 'circuit-breakers',
  connectionManager(hcm) {
    hcm.local_reply_config = {
      mappers: [
        {
          filter: { response_flag_filter: { flags: ['UO'] } },
          headers_to_add: [{ header: { key: 'x-envoy-overloaded', value: 'true' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        },
      ],
    };
  },
  cluster(cluster, service) {
    const limits = service.circuitBreakers;
    cluster.circuit_breakers = {
      thresholds: [
        {
          priority: 'DEFAULT',
          max_connections: wrapped(limits.maxConnections),
          max_pending_requests: wrapped(limits.maxPendingRequests),
          max_requests: wrapped(limits.maxRequests),
          max_retries: wrapped(limits.maxRetries),
          track_remaining: true,
        },
      ],
    };
  },
};
