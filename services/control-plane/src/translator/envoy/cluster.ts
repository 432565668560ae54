import type { ProtoObject } from '../../resources.js';
import type { EndpointIR, RevisionIR, ServiceIR } from '../ir.js';
import type { BuildContext } from './feature.js';
import { features } from './features/index.js';
import { adsSource, duration, wrapped } from './proto.js';

/** One cluster per revision, its endpoints over EDS on the ADS stream; features add the rest. */
export function buildCluster(revision: RevisionIR, service: ServiceIR, context: BuildContext): ProtoObject {
  const cluster: ProtoObject = {
    name: revision.cluster,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsSource() },
    connect_timeout: duration(2000),
  };
  for (const feature of features) feature.cluster?.(cluster, service, context);
  return cluster;
}

/**
 * A revision's endpoints in one locality (weight 1: gRPC clients drop unweighted localities).
 * Unhealthy and draining endpoints stay listed with their status so Envoy's admin view and
 * stats show them; neither Envoy nor gRPC clients send them new requests.
 */
export function buildLoadAssignment(cluster: string, endpoints: readonly EndpointIR[]): ProtoObject {
  const known = loadAssignments.get(endpoints);
  if (known?.cluster_name === cluster) return known;
  const built = loadAssignmentOf(cluster, endpoints);
  loadAssignments.set(endpoints, built);
  return built;
}

/**
 * Load assignments by the endpoint list they were built from: resolved endpoints are the same
 * array while nothing they depend on changed, and the same object lets the cache skip the
 * assignment without serialising it (thousands per translation otherwise).
 */
const loadAssignments = new WeakMap<readonly EndpointIR[], ProtoObject>();

function loadAssignmentOf(cluster: string, endpoints: readonly EndpointIR[]): ProtoObject {
  if (endpoints.length === 0) return { cluster_name: cluster, endpoints: [] };
  return {
    cluster_name: cluster,
    endpoints: [
      {
        locality: {},
        load_balancing_weight: wrapped(1),
        lb_endpoints: endpoints.map((endpoint) => ({
          endpoint: { address: { socket_address: { address: endpoint.address, port_value: endpoint.port } } },
          health_status: endpoint.status,
        })),
      },
    ],
  };
}
