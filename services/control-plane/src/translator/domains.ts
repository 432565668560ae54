/**
 * Domain patterns as Envoy matches virtual hosts: `api.acme.test` matches itself only;
 * `*.acme.test` matches every name ending in `.acme.test` (any number of labels), but not
 * `acme.test` itself.
 */

export function isWildcard(domain: string): boolean {
  return domain.startsWith('*.');
}

/** The domain without its `*.` wildcard label. */
function base(domain: string): string {
  return isWildcard(domain) ? domain.slice(2) : domain;
}

/** `a.b.c` → [`b.c`, `c`]: every parent domain, nearest first. */
function parents(name: string): string[] {
  const result: string[] = [];
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) result.push(name.slice(dot + 1));
  return result;
}

/** Whether a tenant's grants (each covering itself and its subdomains) cover a domain pattern. */
export function grantCovers(grants: readonly string[], domain: string): boolean {
  const name = base(domain);
  return grants.some((grant) => name === grant || name.endsWith(`.${grant}`));
}

/**
 * Claims domain patterns for owners, first come first served, and finds overlaps: two patterns
 * overlap when some host name matches both.
 */
export class DomainClaims<Owner> {
  private readonly exact = new Map<string, Owner>();
  private readonly wildcards = new Map<string, Owner>();
  /** Owner of some claimed name strictly below each domain (exact names and wildcard bases). */
  private readonly below = new Map<string, Owner>();

  /** The owner of a claimed pattern that overlaps `domain`, if any. */
  conflict(domain: string): Owner | undefined {
    const name = base(domain);
    if (!isWildcard(domain)) {
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

  claim(domain: string, owner: Owner): void {
    const name = base(domain);
    if (isWildcard(domain)) {
      this.wildcards.set(name, owner);
      if (!this.below.has(name)) this.below.set(name, owner);
    } else {
      this.exact.set(name, owner);
    }
    for (const parent of parents(name)) if (!this.below.has(parent)) this.below.set(parent, owner);
  }
}
