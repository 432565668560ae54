import { activatorHeaders } from '@switchyard/shared';
import type { ProtoObject } from '../../../resources.js';
import type { Feature } from '../feature.js';

/**
 * With an activator configured, every weighted cluster of a service's routes (HTTP or gRPC) tells the
 * upstream which revision the request is for and the route's timeout, overwriting whatever a
 * client sent: the activator reads both when EDS sends a revision's traffic to it. Proxyless
 * gRPC clients do not apply request_headers_to_add (gRFC A81 is not in grpc-js-xds), so their
 * group gets none; the activator picks their revision from the service's split.
 */
export const activatorRouting: Feature = {
  name: 'activator-headers',
  routeAction(action, route, _service, { group, options }) {
    if (options.activator === undefined || group !== 'envoy') return;
    const split = action.weighted_clusters as { clusters: ProtoObject[] };
    for (const cluster of split.clusters) {
      cluster.request_headers_to_add = [
        { header: { key: activatorHeaders.revision, value: cluster.name }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: activatorHeaders.timeoutMs, value: String(route.timeoutMs) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      ];
    }
  },
};
