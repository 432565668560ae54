import type { Feature } from '../feature.js';
import { EnvoyType, typed } from '../proto.js';

/**
 * Request tracing hooks. Envoy always generates the request ID and forwards W3C trace context
 * untouched; with the operator's `tracing` option it also samples requests into spans sent to
 * an OpenTelemetry collector cluster defined in the bootstrap.
 */
export const tracing: Feature = {
  name: 'tracing',
  connectionManager(hcm, options) {
    if (options.tracing === undefined) return;
    hcm.tracing = {
      random_sampling: { value: options.tracing.samplingPercent },
      provider: {
        name: 'envoy.tracers.opentelemetry',
        typed_config: typed(EnvoyType.OpenTelemetryConfig, {
          grpc_service: { envoy_grpc: { cluster_name: options.tracing.collectorCluster } },
          service_name: options.tracing.serviceName,
        }),
      },
    };
  },
};
