import { TypeUrl, clusterName, type XdsTypeUrl } from '@switchyard/shared';
import type { ServiceRef, ServiceStatus, XdsNodeStatus } from '../api/index.js';
import type { NodeStatus, XdsCache } from '../xds/index.js';
import { typeNames } from '../xds/index.js';
import { endpointKey } from '../translator/index.js';
import type { BusInputs } from './bus-inputs.js';
import type { NackQuarantine } from './nack-quarantine.js';

const typeUrlOf = Object.fromEntries(Object.entries(typeNames).map(([url, name]) => [name, url as XdsTypeUrl])) as Record<
  (typeof typeNames)[XdsTypeUrl],
  XdsTypeUrl
>;

/** GET /v1/nodes: the engine's per-node delivery state in the API's shape. */
export function apiNodes(nodes: NodeStatus[]): XdsNodeStatus[] {
  return nodes.map((node) => ({
    id: node.nodeId,
    cluster: node.cluster,
    userAgent: node.userAgent.name || null,
    connectedAt: Date.parse(node.connectedSince),
    resources: Object.entries(node.types).map(([name, delivery]) => ({
      typeUrl: typeUrlOf[name as keyof typeof typeUrlOf],
      status: delivery.status,
      upToDate: delivery.upToDate,
      mode: node.streams[0]?.mode ?? 'sotw',
      ackedVersion: delivery.ackedVersion || null,
      lastNack: delivery.lastNack
        ? { version: delivery.lastNack.version || null, error: delivery.lastNack.errorDetail, at: Date.parse(delivery.lastNack.at) }
        : null,
    })),
  }));
}

/**
 * Completes a service's status with what the running system knows: managed endpoints and
 * their health from the bus, and per connected node whether it holds the current config.
 */
export function liveServiceStatus(
  ref: ServiceRef,
  fromSpec: ServiceStatus,
  deps: { inputs: BusInputs; cache: XdsCache; nodes: () => NodeStatus[]; quarantine: NackQuarantine },
): ServiceStatus {
  const revisions = fromSpec.revisions.map((revision) => {
    const cluster = clusterName({ tenant: ref.tenant, service: ref.service, revision: revision.name });
    const health = deps.inputs.health.get(cluster);
    const healthOf = (address: string, port: number) => health?.get(endpointKey(address, port))?.state ?? 'unknown';
    if (revision.source === 'static') {
      return { ...revision, endpoints: revision.endpoints.map((e) => ({ ...e, health: healthOf(e.address, e.port) })) };
    }
    const set = deps.inputs.endpointSets.get(cluster);
    return {
      ...revision,
      endpoints: (set?.endpoints ?? []).map((e) => ({
        address: e.address,
        port: e.port,
        id: e.id,
        state: e.state,
        health: healthOf(e.address, e.port),
      })),
    };
  });
  const group = ref.spec.protocol === 'grpc' ? null : 'envoy';
  const nodes = deps
    .nodes()
    .filter((node) => group === null || node.group === group)
    .map((node) => {
      const deliveries = Object.values(node.types);
      const current = deliveries.every((d) => d.upToDate);
      const nack = deliveries.find((d) => d.status === 'NACKED')?.lastNack;
      return {
        node: node.nodeId,
        state: nack ? ('NACKED' as const) : current ? ('ACKED' as const) : ('PENDING' as const),
        ackedVersion: node.types.cds?.ackedVersion || null,
        error: nack?.errorDetail ?? null,
      };
    });
  const hold = deps.quarantine.holdOf(ref.tenant, ref.service);
  const heldBack =
    hold === undefined
      ? null
      : { error: hold.error, typeUrl: hold.typeUrl, since: hold.since, servingPrevious: hold.servedRevision !== undefined };
  return { ...fromSpec, revisions, xds: { version: deps.cache.typeState('envoy', TypeUrl.Cluster).version, nodes, heldBack } };
}
