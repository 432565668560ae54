import { TypeUrl } from '@switchyard/shared';
import type { ProtoObject, ResourceSet, Snapshot } from '../src/resources.js';
import { clusterNameOf } from './xds-bench-protocol.js';

/**
 * The configuration every xDS benchmark serves: N EDS clusters over ADS, two endpoints each.
 * Round r changes cluster 0's endpoints (their port is `changedPort(r)`); every other object is
 * the same from round to round, as the translator hands them over.
 */

export function clusterResource(i: number): ProtoObject {
  return {
    name: clusterNameOf(i),
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    connect_timeout: { seconds: 1 },
  };
}

export const changedPort = (round: number) => 8080 + round;

export function endpointsResource(i: number, round: number): ProtoObject {
  const endpoint = (host: number) => ({
    endpoint: { address: { socket_address: { address: `10.${(i >> 8) & 255}.${i & 255}.${host}`, port_value: changedPort(round) } } },
  });
  return { cluster_name: clusterNameOf(i), endpoints: [{ locality: { zone: 'a' }, lb_endpoints: [endpoint(1), endpoint(2)] }] };
}

/** Snapshots for each round of one benchmark size; unchanged objects are shared between rounds. */
export function benchSnapshots(clusters: number): (round: number) => Snapshot {
  const clusterMap = new Map(Array.from({ length: clusters }, (_, i) => [clusterNameOf(i), clusterResource(i)]));
  const baseEndpoints = new Map(Array.from({ length: clusters }, (_, i) => [clusterNameOf(i), endpointsResource(i, 0)]));
  return (round) => {
    const endpointMap = new Map(baseEndpoints);
    if (round > 0) endpointMap.set(clusterNameOf(0), endpointsResource(0, round));
    const set: ResourceSet = new Map([
      [TypeUrl.Cluster, clusterMap],
      [TypeUrl.ClusterLoadAssignment, endpointMap],
    ]);
    return { envoy: set, grpc: set };
  };
}
