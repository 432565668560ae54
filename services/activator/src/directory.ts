import { trafficSplit, type RevisionRef, type ServiceRecord } from '@switchyard/shared';

/**
 * Which service a request's authority names, and which of its revisions the request is for:
 * pure functions over the services' domains and traffic splits (no I/O).
 *
 * A request through Envoy names its revision (the route sets `x-switchyard-revision`); a
 * proxyless gRPC client cannot add that header, so the activator picks the revision from the
 * service's split, preferring revisions without ready endpoints (those are the ones a client is
 * sent here for). Either way the revision must belong to the service the authority names: a
 * client that reaches the activator directly cannot name another service's revision, only ones
 * it could reach through Envoy by naming their domain.
 */

export interface ServiceEntry {
  tenant: string;
  service: string;
  createdAt: number;
  domains: readonly string[];
  revisions: readonly string[];
  split: readonly { revision: string; percent: number }[];
  /** The service's request timeout, for requests that carry none. */
  timeoutMs: number;
  /** Requests one instance takes at once; the activator never sends it more. */
  maxConcurrency: number;
}

export function serviceEntry(record: ServiceRecord): ServiceEntry {
  return {
    tenant: record.tenant,
    service: record.name,
    createdAt: record.createdAt ?? record.updatedAt,
    domains: record.spec.domains,
    revisions: record.spec.revisions.map((r) => r.name),
    split: trafficSplit(record.spec),
    timeoutMs: record.spec.timeouts.request,
    maxConcurrency: record.spec.scaling.maxConcurrency,
  };
}

/** Services by domain; a domain claimed by several goes to the oldest service (as the translator decides). */
export class Directory {
  private readonly byKey = new Map<string, ServiceEntry>();
  private readonly byDomain = new Map<string, ServiceEntry[]>();

  put(entry: ServiceEntry): void {
    this.delete(entry.tenant, entry.service);
    this.byKey.set(`${entry.tenant}/${entry.service}`, entry);
    for (const domain of entry.domains) {
      const claims = [...(this.byDomain.get(domain) ?? []), entry].sort((a, b) => a.createdAt - b.createdAt);
      this.byDomain.set(domain, claims);
    }
  }

  delete(tenant: string, service: string): void {
    const entry = this.byKey.get(`${tenant}/${service}`);
    if (entry === undefined) return;
    this.byKey.delete(`${tenant}/${service}`);
    for (const domain of entry.domains) {
      const claims = (this.byDomain.get(domain) ?? []).filter((e) => e !== entry);
      if (claims.length === 0) this.byDomain.delete(domain);
      else this.byDomain.set(domain, claims);
    }
  }

  /** The service an authority (`host[:port]`) names: the exact domain, else the longest matching wildcard. */
  lookup(authority: string): ServiceEntry | undefined {
    const host = hostOf(authority);
    const exact = this.byDomain.get(host)?.[0];
    if (exact !== undefined) return exact;
    for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
      const wildcard = this.byDomain.get(`*${host.slice(dot)}`)?.[0];
      if (wildcard !== undefined) return wildcard;
    }
    return undefined;
  }
}

/** The host of an authority, lowercase, without its port (IPv6 literals keep their brackets). */
export function hostOf(authority: string): string {
  const host = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.replace(/:\d*$/, '');
  return host.toLowerCase();
}

export type RevisionChoice = { ref: RevisionRef } | { error: string };

/**
 * The revision a request is for. `named` is the revision the route named (undefined from a
 * proxyless client); `random` is in [0, 1) and picks by the split's weights.
 */
export function chooseRevision(
  entry: ServiceEntry,
  named: RevisionRef | undefined,
  hasReady: (revision: string) => boolean,
  random: number,
): RevisionChoice {
  const { tenant, service } = entry;
  if (named !== undefined) {
    if (named.tenant !== tenant || named.service !== service || !entry.revisions.includes(named.revision))
      return { error: `revision ${named.tenant}/${named.service}/${named.revision} is not a revision of the service this host names` };
    return { ref: named };
  }
  const routed = entry.split.filter((t) => t.percent > 0);
  const cold = routed.filter((t) => !hasReady(t.revision));
  const candidates = cold.length > 0 ? cold : routed;
  const total = candidates.reduce((sum, t) => sum + t.percent, 0);
  let point = random * total;
  for (const t of candidates) {
    point -= t.percent;
    if (point < 0) return { ref: { tenant, service, revision: t.revision } };
  }
  const last = candidates.at(-1);
  return last === undefined
    ? { error: `service ${tenant}/${service} sends no traffic to any revision` }
    : { ref: { tenant, service, revision: last.revision } };
}

/** A gRPC `grpc-timeout` header (`<digits><H|M|S|m|u|n>`) in milliseconds; undefined when absent or malformed. */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[match[2] as 'H' | 'M' | 'S' | 'm' | 'u' | 'n'];
  return Math.max(1, Math.ceil(Number(match[1]) * unitMs));
}
