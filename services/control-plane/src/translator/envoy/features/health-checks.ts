import type { ProtoObject } from '../../../resources.js';
import type { ServiceIR } from '../../ir.js';
import type { Feature } from '../feature.js';
import { EnvoyType, duration, typed, wrapped } from '../proto.js';

/**
 * What a check sends. A gRPC server answers only gRPC (grpc-js refuses a plain GET with 415),
 * so an `http` check of a gRPC service is the gRPC Health Checking Protocol
 * (grpc.health.v1.Health/Check for the whole server) over the cluster's HTTP/2.
 */
function probeOf(service: ServiceIR): ProtoObject {
  if (service.healthCheck.protocol === 'tcp') return { tcp_health_check: {} };
  if (service.protocol === 'grpc') return { grpc_health_check: {} };
  return { http_health_check: { path: service.healthCheck.path } };
}

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
    cluster.health_checks = [
      {
        timeout: duration(spec.timeout),
        interval: duration(spec.interval),
        // Without traffic Envoy would otherwise check only every 60 s, leaving a broken idle instance in place.
        no_traffic_interval: duration(spec.interval),
        unhealthy_threshold: wrapped(spec.unhealthyThreshold),
        healthy_threshold: wrapped(spec.healthyThreshold),
        ...probeOf(service),
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
