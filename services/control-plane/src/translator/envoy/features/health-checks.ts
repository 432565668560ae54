import type { Feature } from '../feature.js';
import { EnvoyType, duration, typed, wrapped } from '../proto.js';

/**
 * Active health checks run by Envoy itself, when the operator turns them on
 * (`activeHealthChecks`); normally the event-streamer delegates them over HDS. Results are
 * written as JSON lines for the event-streamer to tail. The spec's grace period has no Envoy
 * counterpart here; the checkers' aggregator applies it to HDS results.
 */
export const healthChecks: Feature = {
  name: 'health-checks',
  cluster(cluster, service, { group, options }) {
    if (group !== 'envoy' || options.activeHealthChecks === undefined) return;
    const spec = service.healthCheck;
    const probe =
      spec.protocol === 'http'
        ? { http_health_check: { path: spec.path, ...(service.protocol === 'grpc' ? { codec_client_type: 'HTTP2' } : {}) } }
        : { tcp_health_check: {} };
    cluster.health_checks = [
      {
        timeout: duration(spec.timeout),
        interval: duration(spec.interval),
        unhealthy_threshold: wrapped(spec.unhealthyThreshold),
        healthy_threshold: wrapped(spec.healthyThreshold),
        ...probe,
        event_logger: [
          {
            name: 'envoy.health_check.event_sink.file',
            typed_config: typed(EnvoyType.HealthCheckEventFileSink, { event_log_path: options.activeHealthChecks.eventLogPath }),
          },
        ],
        always_log_health_check_failures: true,
      },
    ];
    // An instance removed by the autoscaler leaves at once, without waiting to fail its checks.
    cluster.ignore_health_on_host_removal = true;
  },
};
