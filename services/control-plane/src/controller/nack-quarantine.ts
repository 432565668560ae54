import type { ServiceRecord } from '@switchyard/shared';

/** A service as the translation saw it: its record and the KV revision that stored it. */
export interface StoredService {
  record: ServiceRecord;
  revision: number;
}

/** A service whose latest spec a data-plane client rejected: it is served at `servedRevision` (or left out) until its spec changes. */
export interface HeldService {
  tenant: string;
  service: string;
  /** The KV revision of the spec the client rejected. */
  rejectedRevision: number;
  /** The KV revision served instead; undefined when no accepted version exists (the service is left out). */
  servedRevision: number | undefined;
  typeUrl: string;
  error: string;
  since: number;
}

interface Translation {
  id: number;
  /** Content version per type URL, as the clients of the quarantined group are sent it. */
  versions: ReadonlyMap<string, string>;
  services: ReadonlyMap<string, StoredService>;
}

const keyOf = (tenant: string, service: string) => `${tenant}/${service}`;

/** Every string of at least `min` characters in a spec, where a client's error message may quote it (a regex, a header, a domain). */
function stringsOf(value: unknown, min: number, out: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string' && value.length >= min) out.add(value);
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, min, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) stringsOf(v, min, out);
  return out;
}

function mentionedBy(error: string, stored: StoredService): boolean {
  const { tenant, name } = stored.record;
  if (error.includes(`sy_${tenant}_${name}_`) || error.includes(`${tenant}_${name}`)) return true;
  for (const text of stringsOf(stored.record.spec, 4)) if (error.includes(text)) return true;
  return false;
}

/**
 * Contains a NACK to the service that caused it. Envoy NACKs the response that carried a
 * resource it cannot load and keeps its last good copy; without a hold, the rejected spec
 * would go out again with every translation, and nothing would say which service it was.
 * The suspects of a NACK are the services whose spec changed since the last translation the
 * client ACKed for that type, narrowed to those the error message names when it names any;
 * each is held at its last accepted spec (or left out) until its spec changes again, and the
 * next translation resends everything else. Pure: the caller feeds it translations and the
 * clients' ACKs and NACKs, and applies `servedServices` before translating.
 */
export class NackQuarantine {
  private readonly history: Translation[] = [];
  private readonly ackedId = new Map<string, number>();
  private readonly held = new Map<string, HeldService>();
  /** What is served instead of each held service's rejected spec (absent: left out). */
  private readonly servedInstead = new Map<string, StoredService>();
  private nextId = 0;

  constructor(private readonly historyLength = 32) {}

  /** The services to translate: held services replaced by what was accepted (or left out); holds on changed specs are lifted. */
  servedServices(current: readonly StoredService[]): StoredService[] {
    const out: StoredService[] = [];
    const present = new Set<string>();
    for (const stored of current) {
      const key = keyOf(stored.record.tenant, stored.record.name);
      present.add(key);
      const hold = this.held.get(key);
      if (hold !== undefined && hold.rejectedRevision !== stored.revision) this.release(key);
      else if (hold !== undefined) {
        const instead = this.servedInstead.get(key);
        if (instead !== undefined) out.push(instead);
        continue;
      }
      out.push(stored);
    }
    for (const key of [...this.held.keys()]) if (!present.has(key)) this.release(key);
    return out;
  }

  private release(key: string): void {
    this.held.delete(key);
    this.servedInstead.delete(key);
  }

  /** Records what a translation served: the content version of each type and the services in it. */
  translated(versions: ReadonlyMap<string, string>, services: readonly StoredService[]): void {
    const last = this.history.at(-1);
    if (last !== undefined && sameVersions(last.versions, versions)) return;
    this.history.push({ id: this.nextId++, versions, services: new Map(services.map((s) => [keyOf(s.record.tenant, s.record.name), s])) });
    if (this.history.length > this.historyLength) this.history.shift();
  }

  acked(typeUrl: string, version: string): void {
    const translation = this.find(typeUrl, version);
    if (translation !== undefined && translation.id > (this.ackedId.get(typeUrl) ?? -1)) this.ackedId.set(typeUrl, translation.id);
  }

  /** Holds the services a NACK blames; returns them (empty when none can be blamed, e.g. a version no longer known). */
  nacked(typeUrl: string, version: string, error: string, now: number): HeldService[] {
    const rejected = this.find(typeUrl, version);
    if (rejected === undefined) return [];
    const good = this.goodBefore(typeUrl, rejected);
    const changed = [...rejected.services].filter(([key, s]) => good?.services.get(key)?.revision !== s.revision && !this.held.has(key));
    const named = changed.filter(([, s]) => mentionedBy(error, s));
    // Without an accepted translation to compare with, only a service the error names can be blamed.
    const blamed = named.length > 0 ? named : good !== undefined ? changed : [];
    return blamed.map(([key, stored]) => {
      const served = good?.services.get(key);
      const hold: HeldService = {
        tenant: stored.record.tenant,
        service: stored.record.name,
        rejectedRevision: stored.revision,
        servedRevision: served?.revision,
        typeUrl,
        error,
        since: now,
      };
      this.held.set(key, hold);
      if (served !== undefined) this.servedInstead.set(key, served);
      return hold;
    });
  }

  /** Why a service is served at an older spec (or not at all), if it is. */
  holdOf(tenant: string, service: string): HeldService | undefined {
    return this.held.get(keyOf(tenant, service));
  }

  private find(typeUrl: string, version: string): Translation | undefined {
    for (let i = this.history.length - 1; i >= 0; i--) if (this.history[i]!.versions.get(typeUrl) === version) return this.history[i];
    return undefined;
  }

  /** The last translation ACKed for the type before `rejected`; without any ACK yet, the translation before it. */
  private goodBefore(typeUrl: string, rejected: Translation): Translation | undefined {
    const acked = this.ackedId.get(typeUrl);
    const candidates = this.history.filter((t) => t.id < rejected.id);
    if (acked === undefined) return candidates.at(-1);
    return candidates.filter((t) => t.id <= acked).at(-1);
  }
}

function sameVersions(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
