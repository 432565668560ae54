import { createHash } from 'node:crypto';
import type { XdsTypeUrl } from '@switchyard/shared';
import { decodeNames, forgetNameSpan, rememberNameSpan, setVersion, type EncodedResource, type HeldResource } from './encoding.js';

/**
 * The resources of one type for one node group, with a revision counter and a log of what
 * each revision changed. A stream remembers only the revision it is synced to (plus a few
 * exceptions), never a per-resource map: a thousand Envoys subscribed to ten thousand EDS
 * names would otherwise hold ten million entries.
 */
export class TypeState {
  readonly resources = new Map<string, EncodedResource>();
  revision = 0;
  /** performance.now() of the latest revision, for the push latency metric. */
  updatedAt = 0;
  /** Log entries cover every revision after `floor`. */
  private floor = 0;
  private readonly log: LogEntry[] = [];
  private versionMemo: { revision: number; version: string } = { revision: -1, version: '' };
  private readonly interned = new Map<string, Subscription>();
  readonly wildcard: Subscription;
  /** Views (per-stream state) reading this type, so the log can be trimmed safely. */
  readonly views = new Set<SyncedView>();

  constructor(readonly typeUrl: XdsTypeUrl) {
    this.wildcard = new Subscription(this, '*', true, new Set());
    this.wildcard.refs = Infinity;
  }

  /** Applies one revision's changes (name → new resource, or undefined to delete). */
  apply(changes: ReadonlyMap<string, EncodedResource | undefined>, now: number): void {
    if (changes.size === 0) return;
    this.revision++;
    this.updatedAt = now;
    for (const [name, next] of changes) {
      this.log.push({ revision: this.revision, name, before: this.resources.get(name) });
      if (next === undefined) this.resources.delete(name);
      else this.resources.set(name, next);
    }
  }

  /** Content version of the whole type: equal content, equal version, across restarts. */
  get version(): string {
    if (this.versionMemo.revision !== this.revision) {
      this.versionMemo = { revision: this.revision, version: setVersion(this.resources.values()) };
    }
    return this.versionMemo.version;
  }

  /**
   * For each name changed after `revision`, the resource it had at `revision` (undefined if it
   * did not exist). Throws if the log no longer reaches back that far: callers keep their
   * views registered so trimming folds them forward first.
   */
  changesSince(revision: number): Map<string, EncodedResource | undefined> {
    if (revision < this.floor) throw new Error(`log trimmed past revision ${revision} (floor ${this.floor})`);
    const changes = new Map<string, EncodedResource | undefined>();
    for (let i = this.firstEntryAfter(revision); i < this.log.length; i++) {
      const entry = this.log[i]!;
      if (!changes.has(entry.name)) changes.set(entry.name, entry.before);
    }
    return changes;
  }

  private firstEntryAfter(revision: number): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get logLength(): number {
    return this.log.length;
  }

  /**
   * Drops log entries no view needs. If the log is still longer than `maxEntries` (a view
   * stuck behind, e.g. a client that stopped ACKing), the oldest half is folded into the
   * lagging views' exceptions, so memory stays bounded and no view loses track.
   */
  compact(maxEntries: number): void {
    let needed = this.revision;
    for (const view of this.views) if (view.synced !== noRevisionSynced && view.synced < needed) needed = view.synced;
    if (this.log.length > maxEntries) {
      const cut = this.log[Math.floor(this.log.length / 2)]!.revision;
      if (cut > needed) {
        for (const view of this.views) if (view.synced !== noRevisionSynced && view.synced < cut) this.fold(view, cut);
        needed = cut;
      }
    }
    this.trimTo(needed);
  }

  private fold(view: SyncedView, upTo: number): void {
    const start = this.firstEntryAfter(view.synced);
    for (let i = start; i < this.log.length && this.log[i]!.revision <= upTo; i++) {
      const entry = this.log[i]!;
      if (view.subscription?.includes(entry.name) && !view.overrides.has(entry.name)) {
        view.overrides.set(entry.name, entry.before ?? null);
      }
    }
    view.synced = upTo;
  }

  private trimTo(revision: number): void {
    if (revision <= this.floor) return;
    const drop = this.firstEntryAfter(revision);
    if (drop > 0) this.log.splice(0, drop);
    this.floor = revision;
  }

  /**
   * One shared Subscription per distinct name set, so a thousand identical Envoys cost one.
   * `describe` runs only for a key not seen yet (decoding ten thousand names is the expensive
   * part of a new stream); a key that describes a wildcard maps to the wildcard subscription.
   */
  intern(key: string, describe: () => { names: Iterable<string>; wildcard: boolean }, raw?: Buffer): Subscription {
    let sub = this.interned.get(key);
    if (sub === undefined) {
      const { names, wildcard } = describe();
      const set = new Set(names);
      sub =
        wildcard && set.size === 0
          ? this.wildcard
          : new Subscription(this, key, wildcard, set, raw === undefined ? undefined : Buffer.from(raw));
      if (sub.raw !== undefined) rememberNameSpan(sub.raw, set.size + (wildcard ? 1 : 0), key);
      this.interned.set(key, sub);
    }
    return sub;
  }

  /**
   * The subscription a request's raw names bytes describe (`*` among them: wildcard), the same
   * for a State-of-the-World request and a delta stream's first subscribe list. `knownKey` is
   * the key the decoder recognised the bytes by; otherwise they are hashed, and decoded only
   * if this name set is new.
   */
  internRaw(raw: Buffer, knownKey?: string): Subscription {
    const describe = () => {
      const names = decodeNames(raw);
      return { names: names.filter((n) => n !== '*'), wildcard: names.includes('*') };
    };
    return this.intern(knownKey ?? rawNamesKey(raw), describe, raw);
  }

  release(sub: Subscription): void {
    if (sub === this.wildcard) return;
    if (--sub.refs > 0) return;
    this.interned.delete(sub.key);
    if (sub.raw !== undefined) forgetNameSpan(sub.raw);
  }

  get subscriptionCount(): number {
    return this.interned.size;
  }
}

interface LogEntry {
  revision: number;
  name: string;
  before: EncodedResource | undefined;
}

/** The revision `synced` holds while a view has nothing of its type (a new stream, or one that lost track): before every real revision. */
export const noRevisionSynced = -1;

/** What one stream holds of one type. */
export interface SyncedView {
  subscription: Subscription | undefined;
  /** The client holds every subscribed resource as of this revision, except `overrides`. */
  synced: number;
  /** Resources the client holds at another version than `synced` implies; null = holds nothing. */
  overrides: Map<string, HeldResource | null>;
}

export interface Pending {
  upserts: EncodedResource[];
  /** For each upsert, what the client holds now (null: nothing). */
  replaced: (HeldResource | null)[];
  /** Resources the client holds that no longer exist. */
  removals: HeldResource[];
}

/** Interned set of subscribed names for one type (or the wildcard). Shared between streams. */
export class Subscription {
  refs = 0;
  private memoRevision = -1;
  private readonly memo = new Map<string, unknown>();

  constructor(
    readonly state: TypeState,
    readonly key: string,
    readonly wildcard: boolean,
    readonly names: ReadonlySet<string>,
    /** The raw resource_names bytes this was interned from (State of the World), for memcmp. */
    readonly raw?: Buffer,
  ) {}

  /** Subscribed by name or by wildcard. */
  includes(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** Values derived from (this subscription, current revision), computed once for every stream sharing it. */
  memoized<T>(key: string, compute: () => T): T {
    if (this.memoRevision !== this.state.revision) {
      this.memo.clear();
      this.memoRevision = this.state.revision;
    }
    if (this.memo.has(key)) return this.memo.get(key) as T;
    const value = compute();
    this.memo.set(key, value);
    return value;
  }

  /** Every subscribed resource that exists, in a stable order. */
  resources(): EncodedResource[] {
    return this.memoized('resources', () => {
      if (this.wildcard) return [...this.state.resources.values()];
      const found: EncodedResource[] = [];
      for (const name of this.names) {
        const r = this.state.resources.get(name);
        if (r !== undefined) found.push(r);
      }
      return found;
    });
  }

  /** Subscribed names that do not exist. */
  missing(): string[] {
    return this.memoized('missing', () => {
      if (this.wildcard) return [];
      return [...this.names].filter((n) => !this.state.resources.has(n));
    });
  }

  /** Content version of exactly the subscribed resources (the State-of-the-World version_info). */
  contentVersion(): string {
    if (this.wildcard) return this.state.version;
    return this.memoized('version', () => setVersion(this.resources()));
  }
}

/** Interning key for a set of names regardless of order (delta subscriptions). */
export function nameSetKey(names: Iterable<string>): string {
  const hash = createHash('sha1');
  for (const name of [...names].sort()) hash.update(name).update('\n');
  return `set:${hash.digest('base64url')}`;
}

/** Interning key for raw State-of-the-World resource_names bytes. */
export function rawNamesKey(raw: Uint8Array): string {
  return `raw:${createHash('sha1').update(raw).digest('base64url')}`;
}

/**
 * What a view lacks: resources whose version differs from what the client holds, and
 * resources it holds that are gone. Pure: reads the state, changes nothing.
 */
export function pendingFor(state: TypeState, view: SyncedView): Pending {
  const sub = view.subscription;
  const pending: Pending = { upserts: [], replaced: [], removals: [] };
  if (sub === undefined) return pending;
  const consider = (name: string, had: HeldResource | null | undefined) => {
    if (!sub.includes(name)) return;
    const want = state.resources.get(name);
    if (want !== undefined && had?.version !== want.version) {
      pending.upserts.push(want);
      pending.replaced.push(had ?? null);
    } else if (want === undefined && had) pending.removals.push(had);
  };
  if (view.synced === noRevisionSynced) {
    for (const r of sub.resources()) consider(r.name, view.overrides.get(r.name));
    for (const [name, had] of view.overrides) if (!state.resources.has(name)) consider(name, had);
    return pending;
  }
  const changes = view.synced === state.revision ? new Map<string, EncodedResource | undefined>() : state.changesSince(view.synced);
  for (const [name, before] of changes) consider(name, view.overrides.has(name) ? view.overrides.get(name) : before);
  for (const [name, had] of view.overrides) if (!changes.has(name)) consider(name, had);
  return pending;
}
