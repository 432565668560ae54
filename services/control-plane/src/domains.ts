/**
 * The one owner of the domain rules, used by the API's policy checks (store/policy.ts) and by
 * the translator (translator/build-ir.ts). Patterns are matched as Envoy matches virtual
 * hosts: `api.acme.test` matches itself only; `*.acme.test` matches every name ending in
 * `.acme.test` (any number of labels), but not `acme.test` itself. A grant (`acme.test`)
 * covers the domain and every subdomain of it.
 */

export function isWildcard(pattern: string): boolean {
  return pattern.startsWith('*.');
}

/** The pattern without its `*.` wildcard label. */
function base(pattern: string): string {
  return isWildcard(pattern) ? pattern.slice(2) : pattern;
}

/** A domain and every subdomain of it: `acme.test` covers `acme.test`, `api.acme.test`. */
function isWithin(name: string, domain: string): boolean {
  return name === domain || name.endsWith(`.${domain}`);
}

/** `a.b.c` → [`b.c`, `c`]: every parent domain, nearest first. */
function parents(name: string): string[] {
  const result: string[] = [];
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) result.push(name.slice(dot + 1));
  return result;
}

/** Whether one granted domain lets a service use a host pattern (exact or `*.` wildcard). */
export function grantCovers(grant: string, host: string): boolean {
  return isWithin(base(host), grant);
}

/** Whether any of a tenant's grants covers a host pattern. */
export function grantsCover(grants: readonly string[], host: string): boolean {
  return grants.some((grant) => grantCovers(grant, host));
}

/** Two grants overlap when one equals or contains the other. */
export function grantsOverlap(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** Whether some request host matches both patterns: `*.x` overlaps `*.y.x` and `a.x`, but not `x`. */
export function hostsOverlap(a: string, b: string): boolean {
  if (!isWildcard(a) && !isWildcard(b)) return a === b;
  if (isWildcard(a) && isWildcard(b)) return grantsOverlap(base(a), base(b));
  const [pattern, host] = isWildcard(a) ? [a.slice(1), b] : [b.slice(1), a];
  return host.endsWith(pattern);
}

/**
 * Claims host patterns for owners, first come first served, and finds the owner of a claimed
 * pattern that overlaps a new one ({@link hostsOverlap}, indexed: no scan over every claim).
 */
export class DomainClaims<Owner> {
  private readonly exact = new Map<string, Owner>();
  private readonly wildcards = new Map<string, Owner>();
  /** Owner of some claimed name strictly below each domain (exact names and wildcard bases). */
  private readonly below = new Map<string, Owner>();

  /** The owner of a claimed pattern that overlaps `pattern`, if any. */
  conflict(pattern: string): Owner | undefined {
    const name = base(pattern);
    if (!isWildcard(pattern)) {
      const owner = this.exact.get(name);
      if (owner !== undefined) return owner;
      for (const parent of parents(name)) {
        const wildcardOwner = this.wildcards.get(parent);
        if (wildcardOwner !== undefined) return wildcardOwner;
      }
      return undefined;
    }
    for (const candidate of [name, ...parents(name)]) {
      const wildcardOwner = this.wildcards.get(candidate);
      if (wildcardOwner !== undefined) return wildcardOwner;
    }
    return this.below.get(name);
  }

  claim(pattern: string, owner: Owner): void {
    const name = base(pattern);
    if (isWildcard(pattern)) {
      this.wildcards.set(name, owner);
      if (!this.below.has(name)) this.below.set(name, owner);
    } else {
      this.exact.set(name, owner);
    }
    for (const parent of parents(name)) if (!this.below.has(parent)) this.below.set(parent, owner);
  }
}
