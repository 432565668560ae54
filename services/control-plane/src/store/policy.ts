import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { getPublicSuffix } from 'tldts';
import { ConfigError, type ServiceSpec } from '@switchyard/shared';
import { grantCovers, grantsOverlap, hostsOverlap } from '../domains.js';
import { specProblems } from '../validation/spec.js';

/**
 * Rules of the desired state that a single document cannot check on its own: domain grants
 * between tenants, hosts between a tenant's services, the operator's endpoint allowlist and
 * cross-field limits. Pure functions: no I/O, every refusal names the field at fault. The
 * domain rules themselves (what a grant covers, which patterns overlap) live in ../domains.ts.
 */

export interface Issue {
  field: string;
  message: string;
}

/** 400: the document contradicts itself; 403: policy forbids it; 409: it collides with other state. */
export type PolicyResult = { ok: true } | { ok: false; status: 400 | 403 | 409; issues: Issue[] };

const ok: PolicyResult = { ok: true };

export interface TenantGrant {
  name: string;
  domains: string[];
}

export interface ServiceDomains {
  name: string;
  domains: string[];
}

/**
 * Checks a tenant's new grant against every other tenant's grant (no overlap) and against the
 * tenant's own services (a grant may not shrink under a domain a service still uses).
 */
export function checkTenantGrant(input: {
  tenant: string;
  domains: string[];
  otherTenants: Iterable<TenantGrant>;
  services: Iterable<ServiceDomains>;
}): PolicyResult {
  const refused = grantRefusals(input.domains);
  if (refused.length > 0) return { ok: false, status: 400, issues: refused };
  const issues: Issue[] = [];
  const others = [...input.otherTenants].filter((t) => t.name !== input.tenant);
  input.domains.forEach((domain, i) => {
    for (const other of others) {
      const clash = other.domains.find((granted) => grantsOverlap(domain, granted));
      if (clash !== undefined) {
        issues.push({ field: `domains[${i}]`, message: `"${domain}" overlaps "${clash}", which is granted to tenant "${other.name}"` });
      }
    }
  });
  if (issues.length > 0) return { ok: false, status: 409, issues };
  for (const service of input.services) {
    for (const host of service.domains) {
      if (!input.domains.some((grant) => grantCovers(grant, host))) {
        issues.push({
          field: 'domains',
          message: `would no longer cover "${host}", which service "${service.name}" uses; change or delete that service first`,
        });
      }
    }
  }
  return issues.length > 0 ? { ok: false, status: 409, issues } : ok;
}

/**
 * Domains no tenant may own: a public suffix (`com`, `co.uk`, `github.io`: every tenant's
 * neighbours live under it), `localhost` and its subdomains, IP literals, and the same domain
 * twice.
 */
function grantRefusals(domains: string[]): Issue[] {
  const issues: Issue[] = [];
  domains.forEach((domain, i) => {
    const refusal =
      domains.indexOf(domain) < i
        ? `is granted twice (domains[${domains.indexOf(domain)}])`
        : isIPv4(domain)
          ? 'is an IP address, not a domain'
          : domain === 'localhost' || domain.endsWith('.localhost')
            ? 'is localhost, which always means the proxy itself'
            : getPublicSuffix(domain, { allowPrivateDomains: true }) === domain
              ? 'is a public suffix: grant a domain registered under it'
              : undefined;
    if (refusal !== undefined) issues.push({ field: `domains[${i}]`, message: refusal });
  });
  return issues;
}

interface ProtectedRange {
  network: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
  what: string;
}

/** Addresses a tenant endpoint may reach only if the operator allows them explicitly. */
const protectedRanges: ProtectedRange[] = [
  { network: '127.0.0.0', prefix: 8, family: 'ipv4', what: "a loopback address (the proxy's admin interface listens there)" },
  { network: '::1', prefix: 128, family: 'ipv6', what: "the loopback address (the proxy's admin interface listens there)" },
  { network: '0.0.0.0', prefix: 8, family: 'ipv4', what: "an unspecified address (it reaches the proxy's own host)" },
  { network: '::', prefix: 128, family: 'ipv6', what: "the unspecified address (it reaches the proxy's own host)" },
  { network: '169.254.0.0', prefix: 16, family: 'ipv4', what: 'a link-local address (cloud metadata services live there)' },
  { network: 'fe80::', prefix: 10, family: 'ipv6', what: 'a link-local address' },
  { network: 'fd00:ec2::254', prefix: 128, family: 'ipv6', what: 'the cloud metadata address' },
];

interface Cidr {
  network: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

function parseCidr(text: string): Cidr | undefined {
  const [network = '', prefixText, ...rest] = text.split('/');
  if (rest.length > 0) return undefined;
  const family = isIPv4(network) ? 'ipv4' : isIPv6(network) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  if (prefixText === undefined) return { network, prefix: max, family };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  return prefix <= max ? { network, prefix, family } : undefined;
}

function blockListOf(ranges: Cidr[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) list.addSubnet(range.network, range.prefix, range.family);
  return list;
}

const maxRememberedAddresses = 65_536;

/**
 * The operator's allowlist for static endpoint addresses (`SWITCHYARD_ENDPOINT_CIDRS`). An
 * address must fall in an allowed range; a protected address (loopback, unspecified,
 * link-local, cloud metadata) additionally needs an allowed range that lies inside its
 * protected range: `127.0.0.0/8` allows loopback, `0.0.0.0/0` does not.
 * IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) count as the IPv4 address they carry.
 */
export class EndpointAllowlist {
  private readonly allowed: BlockList;
  private readonly protectedChecks: { range: ProtectedRange; list: BlockList; explicitlyAllowed: BlockList }[];
  private readonly refusals = new Map<string, string | undefined>();

  private constructor(readonly ranges: string[]) {
    const cidrs = ranges.map((text) => parseCidr(text) as Cidr);
    this.allowed = blockListOf(cidrs);
    this.protectedChecks = protectedRanges.map((range) => {
      const list = blockListOf([range]);
      const inside = cidrs.filter((cidr) => cidr.prefix >= range.prefix && list.check(cidr.network, cidr.family));
      return { range, list, explicitlyAllowed: blockListOf(inside) };
    });
  }

  /** Parses a comma-separated CIDR list; a bare address means that one address. Throws ConfigError naming every bad entry. */
  static parse(text: string): EndpointAllowlist {
    const entries = text
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    const bad = entries.filter((entry) => parseCidr(entry) === undefined);
    if (bad.length > 0) {
      throw new ConfigError(
        bad.map(
          (entry) => `SWITCHYARD_ENDPOINT_CIDRS: "${entry}" is not a CIDR such as 10.0.0.0/8 or fd00::/8 (got ${JSON.stringify(text)})`,
        ),
      );
    }
    return new EndpointAllowlist(entries);
  }

  /**
   * Undefined when the address is allowed, otherwise why not. Remembered per address: every
   * translation asks again for every endpoint, and a BlockList check allocates (profiled: most
   * of a translation's time at 5,000 services). The allowlist never changes; the memory is
   * bounded by starting over.
   */
  refusal(address: string): string | undefined {
    if (this.refusals.has(address)) return this.refusals.get(address);
    if (this.refusals.size >= maxRememberedAddresses) this.refusals.clear();
    const refusal = this.check(address);
    this.refusals.set(address, refusal);
    return refusal;
  }

  private check(address: string): string | undefined {
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    if (family === undefined) return `"${address}" is not an IP address`;
    for (const check of this.protectedChecks) {
      if (check.list.check(address, family) && !check.explicitlyAllowed.check(address, family)) {
        return `${address} is ${check.range.what}; refused unless the operator allows ${check.range.network}/${check.range.prefix} or a part of it in SWITCHYARD_ENDPOINT_CIDRS`;
      }
    }
    if (!this.allowed.check(address, family)) {
      return `${address} is outside the networks the operator allows for static endpoints (SWITCHYARD_ENDPOINT_CIDRS${this.ranges.length === 0 ? ' is empty' : `: ${this.ranges.join(', ')}`})`;
    }
    return undefined;
  }
}

/** Cross-field limits the spec schema cannot see: a retry try may not outlast the request it belongs to. */
function checkLimits(spec: ServiceSpec): Issue[] {
  const issues: Issue[] = [];
  const perTry = spec.retries.perTryTimeout;
  if (spec.retries.attempts > 0 && spec.timeouts.request > 0 && perTry > spec.timeouts.request) {
    issues.push({
      field: 'retries.perTryTimeout',
      message: `(${perTry} ms) must not exceed timeouts.request (${spec.timeouts.request} ms)`,
    });
  }
  spec.routes.forEach((route, i) => {
    if (spec.retries.attempts > 0 && route.timeout !== undefined && route.timeout > 0 && perTry > route.timeout) {
      issues.push({
        field: `routes[${i}].timeout`,
        message: `(${route.timeout} ms) must not be below retries.perTryTimeout (${perTry} ms)`,
      });
    }
  });
  return issues;
}

/**
 * The operator's allowed image registries (`SWITCHYARD_IMAGE_REGISTRIES`, comma-separated
 * prefixes); undefined allows any image. A prefix matches at a path boundary: `ghcr.io/acme`
 * allows `ghcr.io/acme/web:1` and `ghcr.io/acme:1`, not `ghcr.io/acme-evil/web`.
 */
export function parseImageRegistries(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

export function imageAllowed(image: string, registries: readonly string[]): boolean {
  return registries.some((prefix) => {
    if (!image.startsWith(prefix)) return false;
    const next = image.charAt(prefix.length);
    return prefix.endsWith('/') || next === '' || next === '/' || next === ':' || next === '@';
  });
}

function imageProblems(spec: ServiceSpec, registries: readonly string[] | undefined): Issue[] {
  if (registries === undefined) return [];
  const allowed = registries.length === 0 ? 'none' : registries.join(', ');
  return spec.revisions.flatMap((revision, i) =>
    revision.image === undefined || imageAllowed(revision.image, registries)
      ? []
      : [
          {
            field: `revisions[${i}].image`,
            message: `"${revision.image}" is not from a registry the operator allows (SWITCHYARD_IMAGE_REGISTRIES: ${allowed})`,
          },
        ],
  );
}

/**
 * Everything a service spec must satisfy beyond its schema, in order of blame: its own limits
 * and everything the translator checks (400, from validation/spec.ts), images from allowed registries (400), the tenant's grant and the endpoint allowlist (403), the tenant's other services (409).
 */
export function checkService(input: {
  tenant: string;
  service: string;
  spec: ServiceSpec;
  grants: string[];
  siblings: Iterable<ServiceDomains>;
  allowlist: EndpointAllowlist;
  /** Allowed image registry prefixes; undefined allows any image. */
  imageRegistries?: readonly string[] | undefined;
  /** Certificates must be valid at this time. */
  now: number;
}): PolicyResult {
  const { spec, grants } = input;
  const limits = [...checkLimits(spec), ...specProblems(spec, input.now), ...imageProblems(spec, input.imageRegistries)];
  if (limits.length > 0) return { ok: false, status: 400, issues: limits };

  const forbidden: Issue[] = [];
  spec.domains.forEach((host, i) => {
    if (!grants.some((grant) => grantCovers(grant, host))) {
      const granted = grants.length === 0 ? 'none' : grants.join(', ');
      forbidden.push({
        field: `domains[${i}]`,
        message: `"${host}" is not within the domains granted to tenant "${input.tenant}" (granted: ${granted}); ask the operator for a grant`,
      });
    }
  });
  spec.revisions.forEach((revision, r) => {
    revision.endpoints?.forEach((endpoint, e) => {
      const refusal = input.allowlist.refusal(endpoint.address);
      if (refusal !== undefined) forbidden.push({ field: `revisions[${r}].endpoints[${e}].address`, message: refusal });
    });
  });
  if (forbidden.length > 0) return { ok: false, status: 403, issues: forbidden };

  const conflicts: Issue[] = [];
  const siblings = [...input.siblings].filter((s) => s.name !== input.service);
  spec.domains.forEach((host, i) => {
    for (const sibling of siblings) {
      const clash = sibling.domains.find((other) => hostsOverlap(host, other));
      if (clash !== undefined) {
        conflicts.push({
          field: `domains[${i}]`,
          message:
            clash === host
              ? `"${host}" is already served by service "${sibling.name}"`
              : `"${host}" overlaps "${clash}" of service "${sibling.name}": a request host could match both`,
        });
      }
    }
  });
  return conflicts.length > 0 ? { ok: false, status: 409, issues: conflicts } : ok;
}
