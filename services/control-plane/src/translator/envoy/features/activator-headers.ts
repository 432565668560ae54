import { activatorHeaders } from '@switchyard/shared';
import type { ProtoObject } from '../../../resources.js';
import type { Feature } from '../feature.js';

/**
 * With an activator configured, every route of a service (HTTP or gRPC) tells the upstream
 * which revision the request is for and the route's timeout, overwriting whatever a client
 * sent: the activator reads both when EDS sends a revision's traffic to it. A route to one
 * revision carries them itself, a split on each weighted cluster. Proxyless gRPC clients do not
 * apply request_headers_to_add (gRFC A81 is not in grpc-js-xds), so their group gets none; the
 * activator picks their revision from the service's split.
 */
export const activatorRouting: Feature = {
  name: 'activator-headers',
  route(route, ir, _service, { group, options }) {
    if (options.activator === undefined || group !== 'envoy') return;
    const headers = (cluster: string) => [
      { header: { key: activatorHeaders.revision, value: cluster }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: activatorHeaders.timeoutMs, value: String(ir.timeoutMs) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ];
    const action = route.route as ProtoObject;
    if (typeof action.cluster === 'string') {
      route.request_headers_to_add = headers(action.cluster);
      return;
    }
    for (const cluster of (action.weighted_clusters as { clusters: ProtoObject[] }).clusters) {
      cluster.request_headers_to_add = headers(cluster.name as string);
    }
  },
};
