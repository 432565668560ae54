import type { XdsTypeUrl } from '@switchyard/shared';

/**
 * The seam between the translator (what to serve) and the xDS engine (how to serve it).
 * Resources are proto-JSON objects of Envoy's types: snake_case field names, nested Any as
 * `{"@type": "type.googleapis.com/…", …}`, durations as `{seconds, nanos}`.
 */
export type ProtoObject = Record<string, unknown>;

/** Data-plane flavours that get their own translation: Envoy, and proxyless gRPC clients, which accept less. */
export type NodeGroup = 'envoy' | 'grpc';
export const nodeGroups: readonly NodeGroup[] = ['envoy', 'grpc'];

/** Every resource of one type, by resource name. */
export type ResourcesByName = Map<string, ProtoObject>;

/** A node group's complete desired config: every type, every resource. */
export type ResourceSet = Map<XdsTypeUrl, ResourcesByName>;

/** The translator's output: one complete resource set per node group. */
export type Snapshot = Record<NodeGroup, ResourceSet>;
