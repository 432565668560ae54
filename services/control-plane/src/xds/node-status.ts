import type { NodeGroup } from '../resources.js';
import type { DeliveryStatus, XdsStream } from './stream.js';
import { typeNames, type TypeName, type XdsMode } from './types.js';

/** Delivery state of one type to one node, in CSDS words. */
export interface TypeDelivery {
  status: DeliveryStatus;
  /** '*' for a wildcard subscription, else the number of subscribed names. */
  subscribed: '*' | number;
  /** Subscribed names the control plane does not have (CSDS DOES_NOT_EXIST); at most 20 listed. */
  doesNotExist: string[];
  doesNotExistCount: number;
  sentVersion: string;
  ackedVersion: string;
  ackedAt: string | null;
  /** A response is written and not yet ACKed or NACKed. */
  inFlight: boolean;
  /**
   * The client ACKed the desired state of everything it subscribes to, and nothing newer waits.
   * (For named subscriptions the versions are of the subscribed subset, so comparing them with
   * the whole type's version says nothing; this does.)
   */
  upToDate: boolean;
  lastNack: { version: string; errorDetail: string; at: string } | null;
  /** CDS/LDS resources whose current version the client rejected; it is sent what it kept instead. */
  rejected: { name: string; version: string }[];
}

export interface NodeStatus {
  nodeId: string;
  cluster: string;
  userAgent: { name: string; version: string };
  group: NodeGroup;
  connectedSince: string;
  streams: { id: number; mode: XdsMode; api: string; connectedAt: string }[];
  types: Partial<Record<TypeName, TypeDelivery>>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Per-node view for GET /v1/nodes: every open stream of a node id merged. */
export function nodeStatuses(streams: Iterable<{ stream: XdsStream; api: string }>): NodeStatus[] {
  const byNode = new Map<string, NodeStatus>();
  for (const { stream, api } of streams) {
    const node = stream.node;
    if (node === undefined || stream.group === undefined) continue;
    let status = byNode.get(node.id);
    if (status === undefined) {
      status = {
        nodeId: node.id,
        cluster: node.cluster,
        userAgent: { name: node.userAgentName, version: node.userAgentVersion },
        group: stream.group,
        connectedSince: iso(stream.connectedAt),
        streams: [],
        types: {},
      };
      byNode.set(node.id, status);
    }
    if (stream.connectedAt < Date.parse(status.connectedSince)) status.connectedSince = iso(stream.connectedAt);
    status.streams.push({ id: stream.id, mode: stream.mode, api, connectedAt: iso(stream.connectedAt) });
    for (const [typeUrl, view] of stream.views) {
      const sub = view.subscription;
      const missing = sub?.missing() ?? [];
      status.types[typeNames[typeUrl]] = {
        status: view.status,
        subscribed: sub === undefined ? 0 : sub.wildcard ? '*' : sub.names.size,
        doesNotExist: missing.slice(0, 20),
        doesNotExistCount: missing.length,
        sentVersion: view.sentVersion,
        ackedVersion: view.ackedVersion,
        ackedAt: view.ackedAt === undefined ? null : iso(view.ackedAt),
        inFlight: view.inflight !== undefined,
        upToDate:
          view.status === 'ACKED' &&
          view.inflight === undefined &&
          !view.mustRespond &&
          view.synced === view.state.revision &&
          view.overrides.size === 0 &&
          view.rejected.size === 0,
        lastNack:
          view.nack === undefined
            ? null
            : { version: view.nack.version, errorDetail: view.nack.errorDetail.message, at: iso(view.nack.at) },
        rejected: [...view.rejected].map(([name, r]) => ({ name, version: r.version })),
      };
    }
  }
  return [...byNode.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

/** One list from the statuses several processes (the control plane and its xDS workers) report, merged per node id. */
export function mergeNodeStatuses(lists: readonly (readonly NodeStatus[])[]): NodeStatus[] {
  const byNode = new Map<string, NodeStatus>();
  for (const status of lists.flat()) {
    const seen = byNode.get(status.nodeId);
    if (seen === undefined) {
      byNode.set(status.nodeId, { ...status, streams: [...status.streams], types: { ...status.types } });
      continue;
    }
    if (Date.parse(status.connectedSince) < Date.parse(seen.connectedSince)) seen.connectedSince = status.connectedSince;
    seen.streams.push(...status.streams);
    Object.assign(seen.types, status.types);
  }
  return [...byNode.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}
