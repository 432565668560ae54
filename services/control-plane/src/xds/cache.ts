import { performance } from 'node:perf_hooks';
import type { XdsTypeUrl } from '@switchyard/shared';
import { nodeGroups, type NodeGroup, type ProtoObject, type ResourceSet, type ResourcesByName, type Snapshot } from '../resources.js';
import { encodeResource, type EncodedResource } from './encoding.js';
import { TypeState } from './type-state.js';
import { pushOrder, typeNames, type NodeInfo, type TypeName } from './types.js';

/** What one setSnapshot changed, per group and type. */
export interface SnapshotChanges {
  group: NodeGroup;
  typeUrl: XdsTypeUrl;
  added: number;
  updated: number;
  removed: number;
  revision: number;
}

export type CacheListener = (changes: SnapshotChanges[]) => void;

/** Resources of one group and type replaced by name (undefined: removed), already encoded. */
export interface ResourceBatch {
  group: NodeGroup;
  typeUrl: XdsTypeUrl;
  resources: ReadonlyMap<string, EncodedResource | undefined>;
}

/** Sees every applied change with its resources, and whether the cache is ready (a replica follows both). */
export type ReplicaListener = (batches: readonly ResourceBatch[], ready: boolean) => void;

/**
 * The desired xDS state per node group. `setSnapshot` replaces it; each resource is compared
 * with the one it replaces (same object: unchanged, no work; otherwise its JSON, and only if
 * that differs is it encoded), so a snapshot that changes one cluster of ten thousand costs
 * one encode. Until the first snapshot (or `markReady()`), the cache is not ready and the
 * servers hold every request: a client must never see an empty or partial config.
 */
export class XdsCache {
  private readonly groups = new Map<NodeGroup, Map<XdsTypeUrl, TypeState>>();
  private isReady = false;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly listeners = new Set<CacheListener>();
  private readonly replicaListeners = new Set<ReplicaListener>();

  constructor() {
    for (const group of nodeGroups) this.groups.set(group, new Map(pushOrder.map((t) => [t, new TypeState(t)])));
  }

  get ready(): boolean {
    return this.isReady;
  }

  /** Resolves once the cache holds its first complete state. */
  whenReady(): Promise<void> {
    if (this.isReady) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Declares the current state complete (e.g. an empty desired state after loading). */
  markReady(): void {
    this.publish([], [], true);
  }

  /** Subscribes to applied resources (for replicas in xDS worker processes); runs synchronously, like onChange. */
  onApplied(listener: ReplicaListener): () => void {
    this.replicaListeners.add(listener);
    return () => this.replicaListeners.delete(listener);
  }

  /** Every resource, one batch per group and type: where a new replica starts. */
  contents(): ResourceBatch[] {
    const batches: ResourceBatch[] = [];
    for (const [group, types] of this.groups) {
      for (const [typeUrl, state] of types) if (state.resources.size > 0) batches.push({ group, typeUrl, resources: state.resources });
    }
    return batches;
  }

  /** Subscribes to changes; listeners run synchronously, after the new state is in place. */
  onChange(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  typeState(group: NodeGroup, typeUrl: XdsTypeUrl): TypeState {
    return this.groups.get(group)!.get(typeUrl)!;
  }

  /**
   * Replaces the desired state. Types missing from a group's ResourceSet become empty.
   * Throws (changing nothing) if a resource cannot be encoded as its type.
   */
  setSnapshot(snapshot: Snapshot): SnapshotChanges[] {
    // Groups often share objects (the same cluster for Envoy and gRPC): encode those once.
    const encodedThisTime = new Map<ProtoObject, EncodedResource>();
    const batches: ResourceBatch[] = [];
    for (const group of nodeGroups) {
      const set = snapshot[group] as ResourceSet | undefined;
      // A missing group is a translator bug, not "delete everything for those clients".
      if (!(set instanceof Map)) throw new Error(`snapshot has no resource set for node group ${group}`);
      for (const typeUrl of pushOrder) {
        const state = this.typeState(group, typeUrl);
        const resources = diffResources(state, set.get(typeUrl) ?? new Map(), { added: 0, updated: 0, removed: 0 }, encodedThisTime);
        if (resources.size > 0) batches.push({ group, typeUrl, resources });
      }
    }
    return this.commit(batches);
  }

  /**
   * Replaces resources that were encoded elsewhere: a replica of another process's cache (an
   * xDS worker) applies what that cache applied, without diffing or encoding. `ready` marks
   * the replica ready once its source is.
   */
  applyChanges(batches: readonly ResourceBatch[], ready: boolean): SnapshotChanges[] {
    return this.commit(batches, ready);
  }

  private commit(batches: readonly ResourceBatch[], readyAfter = true): SnapshotChanges[] {
    const now = performance.now();
    const changed: SnapshotChanges[] = [];
    for (const { group, typeUrl, resources } of batches) {
      const state = this.typeState(group, typeUrl);
      const counts: SnapshotChanges = { group, typeUrl, added: 0, updated: 0, removed: 0, revision: 0 };
      for (const [name, next] of resources) {
        const had = state.resources.has(name);
        if (next === undefined) counts.removed += had ? 1 : 0;
        else if (had) counts.updated++;
        else counts.added++;
      }
      state.apply(resources, now);
      state.compact(Math.max(4096, 2 * state.resources.size));
      counts.revision = state.revision;
      changed.push(counts);
    }
    this.publish(changed, batches, readyAfter);
    return changed;
  }

  /**
   * Tells replicas every change, and readiness; tells streams only once ready. Becoming ready
   * tells streams with an empty change list: every held request is answered.
   */
  private publish(changes: SnapshotChanges[], batches: readonly ResourceBatch[], ready: boolean): void {
    const becameReady = ready && !this.isReady;
    if (becameReady) {
      this.isReady = true;
      for (const resolve of this.readyWaiters.splice(0)) resolve();
    }
    if (batches.length > 0 || becameReady) for (const listener of this.replicaListeners) listener(batches, this.isReady);
    if (becameReady) changes = [];
    else if (changes.length === 0 || !this.isReady) return;
    for (const listener of this.listeners) listener(changes);
  }

  /** Every resource's name and version per group and type: what a client of that group is served (a server-side CSDS view). */
  served(): Record<NodeGroup, Record<TypeName, { name: string; version: string }[]>> {
    const out = {} as Record<NodeGroup, Record<TypeName, { name: string; version: string }[]>>;
    for (const [group, types] of this.groups) {
      const byType = {} as Record<TypeName, { name: string; version: string }[]>;
      for (const [typeUrl, state] of types) {
        byType[typeNames[typeUrl]] = [...state.resources.values()].map((r) => ({ name: r.name, version: r.version }));
      }
      out[group] = byType;
    }
    return out;
  }

  /** Resource counts and content versions, for metrics and the admin API. */
  summary(): { group: NodeGroup; type: string; resources: number; version: string; revision: number }[] {
    const out = [];
    for (const [group, types] of this.groups) {
      for (const [typeUrl, state] of types) {
        out.push({ group, type: typeNames[typeUrl], resources: state.resources.size, version: state.version, revision: state.revision });
      }
    }
    return out;
  }
}

/** Diffs one type: unchanged objects are skipped by identity, then by JSON; only changes are encoded. */
export function diffResources(
  state: TypeState,
  desired: ResourcesByName,
  counts: Pick<SnapshotChanges, 'added' | 'updated' | 'removed'>,
  encodedThisTime = new Map<ProtoObject, EncodedResource>(),
): Map<string, EncodedResource | undefined> {
  const changes = new Map<string, EncodedResource | undefined>();
  for (const [name, source] of desired) {
    const current = state.resources.get(name);
    if (current?.source === source) continue;
    const shared = encodedThisTime.get(source);
    let next: EncodedResource;
    if (shared !== undefined && shared.name === name && shared.typeUrl === state.typeUrl) {
      next = shared;
    } else {
      const json = JSON.stringify(source);
      if (current?.json === json) continue;
      next = encode(state.typeUrl, name, source, json);
      encodedThisTime.set(source, next);
    }
    if (current?.version === next.version) continue;
    changes.set(name, next);
    if (current === undefined) counts.added++;
    else counts.updated++;
  }
  // Every desired name that already existed was found above: equal counts mean nothing is gone.
  if (desired.size - counts.added === state.resources.size) return changes;
  for (const name of state.resources.keys()) {
    if (!desired.has(name)) {
      changes.set(name, undefined);
      counts.removed++;
    }
  }
  return changes;
}

function encode(typeUrl: XdsTypeUrl, name: string, source: ProtoObject, json: string): EncodedResource {
  try {
    return encodeResource(typeUrl, name, source, json);
  } catch (err) {
    throw new Error(`cannot encode ${typeNames[typeUrl]} resource ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Which translation a client gets: proxyless gRPC libraries (grpc-js-xds says "gRPC Node Pure
 * JS", grpc-go "gRPC Go", grpc-java "gRPC Java", C-core "gRPC C-core") accept less than Envoy.
 */
export function nodeGroupOf(node: Pick<NodeInfo, 'userAgentName'>): NodeGroup {
  return /^grpc/i.test(node.userAgentName.trim()) ? 'grpc' : 'envoy';
}
