import type { Feature } from '../feature.js';
import { EnvoyType, alwaysOn, duration, typed, wrapped } from '../proto.js';

const filterName = 'envoy.filters.http.local_ratelimit';

/**
 * A token bucket per service and per Envoy. The listener carries the filter with no bucket
 * (a pass-through); each rate-limited service's virtual host configures its own. Envoy's local
 * rate limit enforces nothing until `filter_enabled` and `filter_enforced` say so. gRPC clients
 * have no such filter: a proxyless client is not limited by itself.
 */
export const localRateLimit: Feature = {
  name: 'local-rate-limit',
  httpFilter: () => ({ name: filterName, typed_config: typed(EnvoyType.LocalRateLimit, { stat_prefix: 'local_rate_limit' }) }),
  virtualHost(virtualHost, service, { group }) {
    if (group !== 'envoy' || service.rateLimit === undefined) return;
    const runtimePrefix = `switchyard.rate_limit.${service.tenant}.${service.name}`;
    virtualHost.typed_per_filter_config = {
      ...(virtualHost.typed_per_filter_config as object | undefined),
      [filterName]: typed(EnvoyType.LocalRateLimit, {
        stat_prefix: service.id,
        token_bucket: {
          max_tokens: service.rateLimit.burst,
          tokens_per_fill: wrapped(service.rateLimit.requestsPerSecond),
          fill_interval: duration(1000),
        },
        filter_enabled: alwaysOn(`${runtimePrefix}.enabled`),
        filter_enforced: alwaysOn(`${runtimePrefix}.enforced`),
        // gRPC clients read RESOURCE_EXHAUSTED as "slow down"; a bare 429 would reach them as UNAVAILABLE.
        rate_limited_as_resource_exhausted: service.protocol === 'grpc',
      }),
    };
  },
};
