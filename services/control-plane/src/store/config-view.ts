import {
  deploymentRecord,
  describeIssues,
  parseConfigKey,
  serviceRecord,
  tenantRecord,
  tokenRecord,
  type DeploymentRecord,
  type ServiceRecord,
  type TenantRecord,
  type TokenRecord,
} from '@switchyard/shared';
import type { z } from 'zod';

/** A record with the KV revision that wrote it; the revision is the record's ETag. */
export interface Versioned<T> {
  record: T;
  revision: number;
}
export type StoredTenant = Versioned<TenantRecord>;
export type StoredService = Versioned<ServiceRecord>;
export type StoredToken = Versioned<TokenRecord> & { hash: string };
export type StoredDeployment = Versioned<DeploymentRecord>;

/** The parts of a KV entry the view reads (a `KvEntry` fits). */
export interface ConfigEntry {
  key: string;
  operation: 'PUT' | 'DEL' | 'PURGE';
  revision: number;
  value: Uint8Array;
}

interface ChangeBase<T> {
  revision: number;
  /** Undefined when the record was deleted. */
  current: T | undefined;
  previous: T | undefined;
  /** True while the watcher replays the bucket at start, before the view is ready. */
  initialLoad: boolean;
}
export type ConfigChange =
  | ({ kind: 'tenant'; tenant: string } & ChangeBase<TenantRecord>)
  | ({ kind: 'service'; tenant: string; service: string } & ChangeBase<ServiceRecord>)
  | ({ kind: 'deployment'; tenant: string; service: string } & ChangeBase<DeploymentRecord>)
  | ({ kind: 'token'; hash: string } & ChangeBase<TokenRecord>);

export type ApplyOutcome =
  | { outcome: 'applied'; change: ConfigChange }
  /** A delete of a key the view does not hold. */
  | { outcome: 'unchanged' }
  /** At or below the revision already applied (a replay after a re-watch). */
  | { outcome: 'stale' }
  | { outcome: 'ignored'; reason: string }
  /** The record fails its schema; the view keeps the last good one. */
  | { outcome: 'invalid'; reason: string };

export type ChangeListener = (change: ConfigChange) => void;

/** The newest entry of a key when it fails the current schema: shown, replaceable and deletable, never used. */
export interface InvalidEntry {
  key: string;
  revision: number;
  reason: string;
}

const decoder = new TextDecoder();

function decode<S extends z.ZodType>(schema: S, value: Uint8Array): { ok: true; record: z.output<S> } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(value));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const result = schema.safeParse(raw);
  if (result.success) return { ok: true, record: result.data };
  const first = describeIssues(result.error).slice(0, 3);
  return { ok: false, reason: first.map((i) => `${i.field}: ${i.message}`).join('; ') };
}

/**
 * The in-memory desired state: tenants, services and tokens as the config bucket holds them.
 * Changes are applied one KV entry at a time, synchronously, so a reader never sees half a
 * change; listeners run after each applied change. No I/O: the watcher feeds it.
 */
export class ConfigView {
  private readonly tenantsByName = new Map<string, StoredTenant>();
  private readonly servicesByTenant = new Map<string, Map<string, StoredService>>();
  private readonly deploymentsByTenant = new Map<string, Map<string, StoredDeployment>>();
  private readonly tokensByHash = new Map<string, Versioned<TokenRecord>>();
  private readonly invalidByKey = new Map<string, InvalidEntry>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly waiters: { revision: number; resolve: () => void }[] = [];
  private appliedRevision = 0;
  private loading = true;

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  /** The highest KV revision applied so far. */
  get revision(): number {
    return this.appliedRevision;
  }

  /** False once the whole bucket has been loaded. */
  get initialLoad(): boolean {
    return this.loading;
  }

  markLoaded(): void {
    this.loading = false;
  }

  tenant(name: string): StoredTenant | undefined {
    return this.tenantsByName.get(name);
  }

  /** Every tenant, by name. */
  tenants(): StoredTenant[] {
    return [...this.tenantsByName.values()].sort((a, b) => a.record.name.localeCompare(b.record.name));
  }

  service(tenant: string, name: string): StoredService | undefined {
    return this.servicesByTenant.get(tenant)?.get(name);
  }

  /** A tenant's services by name, or every service (by tenant, then name). */
  services(tenant?: string): StoredService[] {
    return byTenant(this.servicesByTenant, tenant).sort(
      (a, b) => a.record.tenant.localeCompare(b.record.tenant) || a.record.name.localeCompare(b.record.name),
    );
  }

  /** A service's current (or last) deployment. */
  deployment(tenant: string, service: string): StoredDeployment | undefined {
    return this.deploymentsByTenant.get(tenant)?.get(service);
  }

  /** A tenant's deployments, or every deployment (by tenant, then service). */
  deployments(tenant?: string): StoredDeployment[] {
    return byTenant(this.deploymentsByTenant, tenant).sort(
      (a, b) => a.record.tenant.localeCompare(b.record.tenant) || a.record.service.localeCompare(b.record.service),
    );
  }

  token(hash: string): StoredToken | undefined {
    const stored = this.tokensByHash.get(hash);
    return stored === undefined ? undefined : { ...stored, hash };
  }

  tokens(): StoredToken[] {
    return [...this.tokensByHash.entries()].map(([hash, stored]) => ({ ...stored, hash }));
  }

  /**
   * The key's newest entry when it fails the current schema (the view keeps serving the last
   * valid record of the key, if there was one).
   */
  invalid(key: string): InvalidEntry | undefined {
    return this.invalidByKey.get(key);
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the view holds `revision` (e.g. a write this process just made). */
  waitFor(revision: number, timeoutMs: number): Promise<void> {
    if (this.appliedRevision >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`the config view did not reach revision ${revision} within ${timeoutMs} ms (at ${this.appliedRevision})`));
      }, timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  apply(entry: ConfigEntry): ApplyOutcome {
    if (entry.revision <= this.appliedRevision) return { outcome: 'stale' };
    const result = this.applyEntry(entry);
    this.appliedRevision = entry.revision;
    if (result.outcome === 'invalid') this.invalidByKey.set(entry.key, { key: entry.key, revision: entry.revision, reason: result.reason });
    else if (result.outcome !== 'ignored') this.invalidByKey.delete(entry.key);
    if (result.outcome === 'applied') this.notify(result.change);
    for (const waiter of this.waiters.filter((w) => w.revision <= this.appliedRevision)) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    return result;
  }

  private notify(change: ConfigChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  private applyEntry(entry: ConfigEntry): ApplyOutcome {
    const parsed = parseConfigKey(entry.key);
    if (parsed === undefined) return { outcome: 'ignored', reason: `key "${entry.key}" is not part of the config layout` };
    const base = { revision: entry.revision, initialLoad: this.loading };
    const owner = (tenant: string, service: string) => (t: string, s: string) =>
      t === tenant && s === service ? undefined : `record names service "${t}/${s}"`;

    switch (parsed.kind) {
      case 'tenant': {
        const { tenant } = parsed;
        const result = applyToSlot(flatSlot(this.tenantsByName, tenant), entry, tenantRecord, (r) =>
          r.name === tenant ? undefined : `record names tenant "${r.name}"`,
        );
        return 'outcome' in result ? result : { outcome: 'applied', change: { kind: 'tenant', tenant, ...result, ...base } };
      }
      case 'service': {
        const { tenant, service } = parsed;
        const result = applyToSlot(groupedSlot(this.servicesByTenant, tenant, service), entry, serviceRecord, (r) =>
          owner(tenant, service)(r.tenant, r.name),
        );
        return 'outcome' in result ? result : { outcome: 'applied', change: { kind: 'service', tenant, service, ...result, ...base } };
      }
      case 'deployment': {
        const { tenant, service } = parsed;
        const result = applyToSlot(groupedSlot(this.deploymentsByTenant, tenant, service), entry, deploymentRecord, (r) =>
          owner(tenant, service)(r.tenant, r.service),
        );
        return 'outcome' in result ? result : { outcome: 'applied', change: { kind: 'deployment', tenant, service, ...result, ...base } };
      }
      case 'token': {
        const hash = entry.key.slice('tokens.'.length);
        const result = applyToSlot(flatSlot(this.tokensByHash, hash), entry, tokenRecord, () => undefined);
        return 'outcome' in result ? result : { outcome: 'applied', change: { kind: 'token', hash, ...result, ...base } };
      }
    }
  }
}

/** Where one key's record lives in the view. */
interface Slot<T> {
  get(): Versioned<T> | undefined;
  set(value: Versioned<T>): void;
  delete(): void;
}

function flatSlot<T>(map: Map<string, Versioned<T>>, key: string): Slot<T> {
  return { get: () => map.get(key), set: (value) => map.set(key, value), delete: () => map.delete(key) };
}

/** A record per service, grouped by tenant so a tenant's records are found without a scan. */
function groupedSlot<T>(groups: Map<string, Map<string, Versioned<T>>>, tenant: string, service: string): Slot<T> {
  return {
    get: () => groups.get(tenant)?.get(service),
    set: (value) => groups.set(tenant, (groups.get(tenant) ?? new Map<string, Versioned<T>>()).set(service, value)),
    delete: () => {
      const group = groups.get(tenant);
      group?.delete(service);
      if (group?.size === 0) groups.delete(tenant);
    },
  };
}

type SlotResult<T> = { current: T | undefined; previous: T | undefined } | Exclude<ApplyOutcome, { outcome: 'applied' }>;

/** Applies a put or delete to one slot; `mismatch` says why a record does not belong under its key. */
function applyToSlot<S extends z.ZodType>(
  slot: Slot<z.output<S>>,
  entry: ConfigEntry,
  schema: S,
  mismatch: (record: z.output<S>) => string | undefined,
): SlotResult<z.output<S>> {
  const previous = slot.get()?.record;
  if (entry.operation !== 'PUT') {
    if (previous === undefined) return { outcome: 'unchanged' };
    slot.delete();
    return { current: undefined, previous };
  }
  const decoded = decode(schema, entry.value);
  if (!decoded.ok) return { outcome: 'invalid', reason: decoded.reason };
  const wrong = mismatch(decoded.record);
  if (wrong !== undefined) return { outcome: 'invalid', reason: wrong };
  slot.set({ record: decoded.record, revision: entry.revision });
  return { current: decoded.record, previous };
}

function byTenant<T>(groups: Map<string, Map<string, T>>, tenant: string | undefined): T[] {
  const selected = tenant === undefined ? [...groups.values()] : [groups.get(tenant) ?? new Map<string, T>()];
  return selected.flatMap((group) => [...group.values()]);
}
