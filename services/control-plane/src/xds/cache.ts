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
    if (this.isReady) return;
    this.isReady = true;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
    this.notify([]);
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
    const now = performance.now();
    // Groups often share objects (the same cluster for Envoy and gRPC): encode those once.
    const encodedThisTime = new Map<ProtoObject, EncodedResource>();
    const planned: { state: TypeState; changes: Map<string, EncodedResource | undefined>; counts: SnapshotChanges }[] = [];
    for (const group of nodeGroups) {
      const set = snapshot[group] as ResourceSet | undefined;
      // A missing group is a translator bug, not "delete everything for those clients".
      if (!(set instanceof Map)) throw new Error(`snapshot has no resource set for node group ${group}`);
      for (const typeUrl of pushOrder) {
        const state = this.typeState(group, typeUrl);
        const counts: SnapshotChanges = { group, typeUrl, added: 0, updated: 0, removed: 0, revision: state.revision };
        const changes = diffResources(state, set.get(typeUrl) ?? new Map(), counts, encodedThisTime);
        if (changes.size > 0) planned.push({ state, changes, counts });
      }
    }
    for (const { state, changes, counts } of planned) {
      state.apply(changes, now);
      state.compact(Math.max(4096, 2 * state.resources.size));
      counts.revision = state.revision;
    }
    const changed = planned.map((p) => p.counts);
    if (!this.isReady) this.markReady();
    else if (changed.length > 0) this.notify(changed);
    return changed;
  }

  private notify(changes: SnapshotChanges[]): void {
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
