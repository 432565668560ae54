import type { Feature } from '../feature.js';
import { wrapped } from '../proto.js';

/** Per-revision limits on connections, queued and active requests, and concurrent retries. gRPC clients read `max_requests` (gRFC A32). */
export const circuitBreakers: Feature = {
  name: 'circuit-breakers',
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
