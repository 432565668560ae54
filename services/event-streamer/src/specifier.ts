import { protoDuration } from '@switchyard/shared';
import type { CheckSettings, CheckTarget } from './catalog.js';

/**
 * Builds the `envoy.service.health.v3.HealthCheckSpecifier` an Envoy gets over HDS: one
 * ClusterHealthCheck per revision with the endpoints assigned to that Envoy. Proto-JSON object
 * form (snake_case), sorted so that the same assignment always encodes the same way: Envoy
 * skips a specifier whose hash it already applied, and so do we before sending.
 */

export type ProtoObject = Record<string, unknown>;

/** Statuses an HTTP check accepts: any 2xx or 3xx (Envoy's default would be 200 only). */
const acceptedStatuses = [{ start: 200, end: 400 }];

export function healthCheckOf(check: CheckSettings): ProtoObject {
  const interval = protoDuration(check.intervalMs);
  return {
    timeout: protoDuration(check.timeoutMs),
    interval,
    // HDS clusters never carry traffic; without these Envoy would check every 60 s instead.
    no_traffic_interval: interval,
    no_traffic_healthy_interval: interval,
    unhealthy_threshold: { value: check.unhealthyThreshold },
    healthy_threshold: { value: check.healthyThreshold },
    ...(check.protocol === 'http'
      ? {
          http_health_check: {
            path: check.path,
            host: check.host,
            expected_statuses: acceptedStatuses,
            codec_client_type: check.http2 ? 'HTTP2' : 'HTTP1',
          },
        }
      : { tcp_health_check: {} }),
  };
}

export function buildSpecifier(targets: Iterable<CheckTarget>, reportIntervalMs: number): ProtoObject {
  const byCluster = new Map<string, CheckTarget[]>();
  for (const target of targets) {
    const list = byCluster.get(target.cluster);
    if (list === undefined) byCluster.set(target.cluster, [target]);
    else list.push(target);
  }
  const clusters = [...byCluster.keys()].sort();
  return {
    cluster_health_checks: clusters.map((cluster) => {
      const list = (byCluster.get(cluster) as CheckTarget[]).sort((a, b) =>
        a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1,
      );
      return {
        cluster_name: cluster,
        health_checks: [healthCheckOf((list[0] as CheckTarget).check)],
        locality_endpoints: [
          { endpoints: list.map((target) => ({ address: { socket_address: { address: target.address, port_value: target.port } } })) },
        ],
      };
    }),
    interval: protoDuration(reportIntervalMs),
  };
}
