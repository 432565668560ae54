import type { Feature } from '../feature.js';
import { duration } from '../proto.js';

/**
 * Request timeout per route (spec default 120 s, as App Runner; 0 disables it) and the
 * service's stream idle timeout. gRPC clients read only `max_stream_duration` (gRFC A31); its
 * `grpc_timeout_header_max` caps the deadline a caller sends, and Envoy honours it the same way.
 */
export const timeouts: Feature = {
  name: 'timeouts',
  routeAction(action, route, service, { group }) {
    const limit = duration(route.timeoutMs);
    if (group === 'grpc') {
      action.max_stream_duration = { max_stream_duration: limit, grpc_timeout_header_max: limit };
      return;
    }
    action.timeout = limit;
    action.idle_timeout = duration(service.idleTimeoutMs);
    if (service.protocol === 'grpc') action.max_stream_duration = { grpc_timeout_header_max: limit };
  },
};
