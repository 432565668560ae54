import type { Feature } from '../feature.js';

/**
 * gRPC clients send load reports (LRS) only where a cluster's `lrs_server` says, and only to
 * their own xDS server (`self`); the autoscaler needs their in-flight requests. Envoy reports
 * through the bootstrap's `load_stats_config` instead (it does not implement `lrs_server`).
 */
export const loadReporting: Feature = {
  name: 'load-reporting',
  cluster(cluster, _service, { group }) {
    if (group === 'grpc') cluster.lrs_server = { self: {} };
  },
};
