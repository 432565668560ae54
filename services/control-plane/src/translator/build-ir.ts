import {
  clusterName,
  describeIssues,
  serviceRecord,
  tenantRecord,
  trafficSplit,
  type ServiceRecord,
  type ServiceSpec,
  type TenantRecord,
} from '@switchyard/shared';
import type { BurstEntry, DesiredState, TranslateOptions, TranslationError } from './desired-state.js';
import { DomainClaims, grantsCover } from '../domains.js';
import { resolveEndpoints, revisionBurst, throughActivator } from './endpoints.js';
import type { EndpointIR, PathMatchIR, RouteIR, ServiceIR } from './ir.js';
import { specProblems, type Problem } from '../validation/spec.js';

export interface IRResult {
  services: ServiceIR[];
  /** Endpoints by cluster name, for every revision of every service. */
  endpoints: Map<string, EndpointIR[]>;
  errors: TranslationError[];
  /** The records translated as they are (neither refused nor replaced by their last good record). */
  accepted: ServiceRecord[];
  nextChangeAt?: number;
  burst: Map<string, BurstEntry>;
}

/**
 * Validates every service on its own and resolves it into the IR. A service with any problem
 * is left out whole, with errors naming tenant, service and field, so one tenant's input can
 * never reach (or break) the configuration shared with others. Domain conflicts go to the
 * service created first: a newcomer cannot take a live service's hosts.
 */
export function buildIR(state: DesiredState, options: TranslateOptions): IRResult {
  const grants = tenantGrants(state.tenants);
  const errors: TranslationError[] = [];
  const services: ServiceIR[] = [];
  const endpoints = new Map<string, EndpointIR[]>();
  const burst = new Map<string, BurstEntry>();
  const claims = new DomainClaims<string>();
  let nextChangeAt: number | undefined;

  const accepted: ServiceRecord[] = [];

  for (const record of [...state.services].sort(applyOrder)) {
    const report = (problems: Problem[]) =>
      problems.forEach((p) => errors.push({ tenant: String(record.tenant), service: String(record.name), ...p }));
    const own = checkRecord(record);
    // A record that fails its checks gives way to the service's last good record, so the service never vanishes.
    const fallback = usable(own) ? undefined : lastGoodOf(record, state.lastGood);
    if (fallback !== undefined) report(own.problems);
    const checked = fallback ?? own;
    if (checked.record === undefined) {
      report(checked.problems);
      continue;
    }
    const { tenant, name, spec } = checked.record;
    const granted = grants.get(tenant);
    if (granted === undefined) {
      report([{ field: 'tenant', message: `tenant "${tenant}" does not exist or its record is invalid` }]);
      continue;
    }
    const problems = [...grantProblems(spec, tenant, granted), ...checked.problems];
    if (problems.length > 0) {
      report(problems);
      continue;
    }
    const owner = `${tenant}/${name}`;
    const conflicts = spec.domains.flatMap((domain, i) => {
      const holder = claims.conflict(domain);
      return holder === undefined
        ? []
        : [{ field: `spec.domains[${i}]`, message: `"${domain}" overlaps a domain of service ${holder}, applied earlier` }];
    });
    if (conflicts.length > 0) {
      report(conflicts);
      continue;
    }
    spec.domains.forEach((domain) => claims.claim(domain, owner));
    if (checked === own) accepted.push(record);

    checked.service ??= serviceIR(tenant, name, spec);
    const service = checked.service;
    spec.revisions.forEach((revision, i) => {
      const { cluster } = service.revisions[i] as ServiceIR['revisions'][number];
      const resolved = resolveEndpoints(revision, cluster, state, options);
      report(resolved.dropped);
      if (resolved.nextReapAt !== undefined) nextChangeAt = Math.min(nextChangeAt ?? Infinity, resolved.nextReapAt);
      let entry: BurstEntry | undefined;
      if (options.activator !== undefined && revision.endpoints === undefined && spec.scaling.targetBurstCapacity > 0) {
        const computed = revisionBurst(spec.scaling, resolved.endpoints, state.burst?.get(cluster), state.load?.get(cluster), state.now);
        entry = computed.entry;
        burst.set(cluster, entry);
        if (computed.changeAt !== undefined) nextChangeAt = Math.min(nextChangeAt ?? Infinity, computed.changeAt);
      }
      endpoints.set(cluster, throughActivator(revision, spec, resolved.endpoints, options.activator, entry));
    });
    services.push(service);
  }
  errors.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.service.localeCompare(b.service) || a.field.localeCompare(b.field));
  services.sort((a, b) => a.id.localeCompare(b.id));
  return nextChangeAt === undefined
    ? { services, endpoints, errors, accepted, burst }
    : { services, endpoints, errors, accepted, nextChangeAt, burst };
}

/** The key of a service in {@link DesiredState.lastGood}. */
export function serviceKey(record: Pick<ServiceRecord, 'tenant' | 'name'>): string {
  return `${String(record.tenant)}/${String(record.name)}`;
}

function usable(checked: CheckedRecord): boolean {
  return checked.record !== undefined && checked.problems.length === 0;
}

function lastGoodOf(record: ServiceRecord, lastGood: DesiredState['lastGood']): CheckedRecord | undefined {
  const previous = lastGood?.get(serviceKey(record));
  if (previous === undefined || previous === record) return undefined;
  const checked = checkRecord(previous);
  return usable(checked) ? checked : undefined;
}

/**
 * Oldest first (by `createdAt`, which updates keep, else `updatedAt`), then by name, so
 * conflicts resolve the same way on every replica and a live service keeps its domains when
 * its tenant updates it.
 */
function applyOrder(a: ServiceRecord, b: ServiceRecord): number {
  const age = (record: ServiceRecord) => Number(record.createdAt ?? record.updatedAt) || 0;
  return age(a) - age(b) || String(a.tenant).localeCompare(String(b.tenant)) || String(a.name).localeCompare(String(b.name));
}

function tenantGrants(tenants: readonly TenantRecord[]): Map<string, string[]> {
  const grants = new Map<string, string[]>();
  for (const record of tenants) {
    const parsed = tenantRecord.safeParse(record);
    if (parsed.success) grants.set(parsed.data.name, parsed.data.spec.domains);
  }
  return grants;
}

/**
 * The parsed record (absent when the schema refuses it), every problem found without the
 * tenant's grant, and the service's IR once it has been accepted.
 */
type CheckedRecord = { record?: ServiceRecord; problems: Problem[]; service?: ServiceIR };

/**
 * Checks of a record alone, remembered per record object: translation runs on every endpoint
 * change, while a stored record changes only when its tenant applies a new spec.
 */
const checkedRecords = new WeakMap<ServiceRecord, CheckedRecord>();

function checkRecord(record: ServiceRecord): CheckedRecord {
  const known = checkedRecords.get(record);
  if (known !== undefined) return known;
  const parsed = serviceRecord.safeParse(record);
  const checked: CheckedRecord = parsed.success
    ? { record: parsed.data, problems: specProblems(parsed.data.spec).map((p) => ({ field: `spec.${p.field}`, message: p.message })) }
    : { problems: describeIssues(parsed.error) };
  checkedRecords.set(record, checked);
  return checked;
}

function grantProblems(spec: ServiceSpec, tenant: string, granted: string[]): Problem[] {
  return spec.domains.flatMap((domain, i) =>
    grantsCover(granted, domain)
      ? []
      : [
          {
            field: `spec.domains[${i}]`,
            message: `"${domain}" is not within tenant ${tenant}'s granted domains (${granted.join(', ') || 'none'})`,
          },
        ],
  );
}

function pathMatch(match: ServiceSpec['routes'][number]['match']): PathMatchIR {
  if (match.path !== undefined) return { kind: 'path', value: match.path };
  if (match.regex !== undefined) return { kind: 'regex', value: match.regex };
  return { kind: 'prefix', value: match.prefix ?? '/' };
}

function serviceIR(tenant: string, name: string, spec: ServiceSpec): ServiceIR {
  const id = `${tenant}_${name}`;
  const clusterOf = (revision: string) => clusterName({ tenant, service: name, revision });
  const routes: RouteIR[] = spec.routes.map((route, i) => ({
    name: `${id}_${route.name ?? String(i)}`,
    path: pathMatch(route.match),
    headers: route.match.headers,
    queryParams: route.match.queryParams,
    timeoutMs: route.timeout ?? spec.timeouts.request,
  }));
  const service: ServiceIR = {
    tenant,
    name,
    id,
    protocol: spec.protocol,
    domains: spec.domains,
    routes,
    idleTimeoutMs: spec.timeouts.idle,
    headers: spec.headers,
    circuitBreakers: spec.circuitBreakers,
    healthCheck: spec.healthCheck,
    revisions: spec.revisions.map((revision) => ({ name: revision.name, cluster: clusterOf(revision.name) })),
    traffic: trafficSplit(spec)
      .filter((entry) => entry.percent > 0)
      .map((entry) => ({ cluster: clusterOf(entry.revision), weight: entry.percent })),
  };
  if (spec.retries.attempts > 0) service.retry = spec.retries;
  if (spec.rateLimit) {
    service.rateLimit = {
      requestsPerSecond: spec.rateLimit.requestsPerSecond,
      burst: spec.rateLimit.burst ?? spec.rateLimit.requestsPerSecond,
    };
  }
  if (spec.outlierDetection) service.outlierDetection = spec.outlierDetection;
  if (spec.tls) {
    service.tls = {
      secretName: `tls_${id}`,
      certificateChain: spec.tls.certificateChain,
      privateKey: spec.tls.privateKey,
      redirectHttp: spec.tls.redirectHttp,
    };
  }
  return service;
}
