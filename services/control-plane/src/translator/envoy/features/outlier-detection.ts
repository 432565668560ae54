import type { Feature } from '../feature.js';
import { duration, wrapped } from '../proto.js';

/**
 * Passive ejection of failing instances. Envoy ejects after `consecutive_5xx` errors; gRPC
 * clients implement only the success-rate and failure-percentage algorithms (gRFC A50) and
 * apply this config's interval, ejection time and maximum percentage with success-rate
 * ejection, which is on by default in both (at least 5 hosts with 100 requests per interval).
 */
export const outlierDetection: Feature = {
  name: 'outlier-detection',
  cluster(cluster, service) {
    const spec = service.outlierDetection;
    if (spec === undefined) return;
    cluster.outlier_detection = {
      consecutive_5xx: wrapped(spec.consecutive5xx),
      interval: duration(spec.interval),
      base_ejection_time: duration(spec.baseEjectionTime),
      max_ejection_percent: wrapped(spec.maxEjectionPercent),
    };
  },
};
