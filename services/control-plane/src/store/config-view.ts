import {
  describeIssues,
  parseConfigKey,
  serviceRecord,
  tenantRecord,
  tokenRecord,
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
  private readonly tokensByHash = new Map<string, StoredToken>();
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
    const groups = tenant === undefined ? [...this.servicesByTenant.values()] : [this.servicesByTenant.get(tenant) ?? new Map()];
    return groups
      .flatMap((group) => [...group.values()])
      .sort((a, b) => a.record.tenant.localeCompare(b.record.tenant) || a.record.name.localeCompare(b.record.name));
  }

  token(hash: string): StoredToken | undefined {
    return this.tokensByHash.get(hash);
  }

  tokens(): StoredToken[] {
    return [...this.tokensByHash.values()];
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
    const deleted = entry.operation !== 'PUT';
    const base = { revision: entry.revision, initialLoad: this.loading };

    if (parsed.kind === 'tenant') {
      const previous = this.tenantsByName.get(parsed.tenant)?.record;
      if (deleted) {
        if (previous === undefined) return { outcome: 'unchanged' };
        this.tenantsByName.delete(parsed.tenant);
        return { outcome: 'applied', change: { kind: 'tenant', tenant: parsed.tenant, current: undefined, previous, ...base } };
      }
      const decoded = decode(tenantRecord, entry.value);
      if (!decoded.ok) return { outcome: 'invalid', reason: decoded.reason };
      if (decoded.record.name !== parsed.tenant) return { outcome: 'invalid', reason: `record names tenant "${decoded.record.name}"` };
      this.tenantsByName.set(parsed.tenant, { record: decoded.record, revision: entry.revision });
      return { outcome: 'applied', change: { kind: 'tenant', tenant: parsed.tenant, current: decoded.record, previous, ...base } };
    }

    if (parsed.kind === 'service') {
      const { tenant, service } = parsed;
      const group = this.servicesByTenant.get(tenant);
      const previous = group?.get(service)?.record;
      if (deleted) {
        if (previous === undefined || group === undefined) return { outcome: 'unchanged' };
        group.delete(service);
        if (group.size === 0) this.servicesByTenant.delete(tenant);
        return { outcome: 'applied', change: { kind: 'service', tenant, service, current: undefined, previous, ...base } };
      }
      const decoded = decode(serviceRecord, entry.value);
      if (!decoded.ok) return { outcome: 'invalid', reason: decoded.reason };
      if (decoded.record.tenant !== tenant || decoded.record.name !== service) {
        return { outcome: 'invalid', reason: `record names service "${decoded.record.tenant}/${decoded.record.name}"` };
      }
      const target = group ?? new Map<string, StoredService>();
      target.set(service, { record: decoded.record, revision: entry.revision });
      this.servicesByTenant.set(tenant, target);
      return { outcome: 'applied', change: { kind: 'service', tenant, service, current: decoded.record, previous, ...base } };
    }

    const hash = entry.key.slice('tokens.'.length);
    const previous = this.tokensByHash.get(hash)?.record;
    if (deleted) {
      if (previous === undefined) return { outcome: 'unchanged' };
      this.tokensByHash.delete(hash);
      return { outcome: 'applied', change: { kind: 'token', hash, current: undefined, previous, ...base } };
    }
    const decoded = decode(tokenRecord, entry.value);
    if (!decoded.ok) return { outcome: 'invalid', reason: decoded.reason };
    this.tokensByHash.set(hash, { record: decoded.record, revision: entry.revision, hash });
    return { outcome: 'applied', change: { kind: 'token', hash, current: decoded.record, previous, ...base } };
  }
}
