import type { Feature } from '../feature.js';
import { EnvoyType, typed } from '../proto.js';

/**
 * Least-request balancing: instances are scaled on concurrency, so each request goes to the
 * less busy of two random instances. Panic mode is off: when most instances are unhealthy,
 * Envoy would otherwise spread traffic over all of them, unhealthy ones included.
 *
 * gRPC clients get a `load_balancing_policy` list (gRFC A52), taken in order: least_request
 * where the client implements it, else round robin inside wrr_locality, the form every xDS
 * gRPC client supports. grpc-js-xds skips the policy it does not know. `lb_policy` stays at
 * its default ROUND_ROBIN for clients with custom LB config turned off.
 */
export const loadBalancing: Feature = {
  name: 'load-balancing',
  cluster(cluster, _service, { group }) {
    if (group === 'envoy') {
      cluster.lb_policy = 'LEAST_REQUEST';
      cluster.common_lb_config = { healthy_panic_threshold: { value: 0 } };
      return;
    }
    cluster.load_balancing_policy = {
      policies: [
        {
          typed_extension_config: {
            name: 'envoy.load_balancing_policies.least_request',
            typed_config: typed(EnvoyType.LeastRequest),
          },
        },
        {
          typed_extension_config: {
            name: 'envoy.load_balancing_policies.wrr_locality',
            typed_config: typed(EnvoyType.WrrLocality, {
              endpoint_picking_policy: {
                policies: [
                  {
                    typed_extension_config: {
                      name: 'envoy.load_balancing_policies.round_robin',
                      typed_config: typed(EnvoyType.RoundRobin),
                    },
                  },
                ],
              },
            }),
          },
        },
      ],
    };
  },
};
