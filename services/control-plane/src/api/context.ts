import type { FastifyReply } from 'fastify';
import {
  RevisionConflict,
  type ConfigStore,
  type EndpointAllowlist,
  type InvalidEntry,
  type StoredService,
  type StoredTenant,
  type WriteCondition,
} from '../store/index.js';
import type { Authenticator } from './auth.js';
import { conflict, notFound, preconditionFailed } from './errors.js';
import { evaluatePreconditions, parsePreconditions } from './preconditions.js';
import type { StatusPublisher } from './events.js';
import type { ServiceView, TenantView } from './schemas.js';
import { statusFromSpec, type NodesProvider, type ServiceStatusProvider, type TranslationErrorsProvider } from './status-from-spec.js';
import { configKeys, type Logger, type ServiceSpec } from '@switchyard/shared';
import { certificateSummary } from '../validation/certificates.js';

/** What every route handler works with. */
export interface ApiContext {
  store: ConfigStore;
  allowlist: EndpointAllowlist;
  /** Allowed image registry prefixes (`SWITCHYARD_IMAGE_REGISTRIES`); undefined allows any image. */
  imageRegistries: readonly string[] | undefined;
  auth: Authenticator;
  logger: Logger;
  publishStatus: StatusPublisher;
  status: ServiceStatusProvider | undefined;
  nodes: NodesProvider;
  translationErrors: TranslationErrorsProvider;
  /** Runs writes one at a time, so each is validated against the state the previous one left. */
  exclusive<T>(write: () => Promise<T>): Promise<T>;
}

export function requireTenant(ctx: ApiContext, tenant: string): StoredTenant {
  const stored = ctx.store.view.tenant(tenant);
  if (stored === undefined) throw notFound('path.tenant', `no tenant "${tenant}"`);
  return stored;
}

/**
 * A service key at its newest entry: the last valid record (absent when none ever was) and,
 * when the newest entry fails the current schema, that entry. `revision` is the newest
 * entry's, the ETag a replace or delete must name.
 */
export interface ServiceEntry {
  tenant: string;
  service: string;
  stored: StoredService | undefined;
  invalid: InvalidEntry | undefined;
  revision: number;
}

export function findService(ctx: ApiContext, tenant: string, service: string): ServiceEntry | undefined {
  const stored = ctx.store.view.service(tenant, service);
  const invalid = ctx.store.view.invalid(configKeys.service(tenant, service));
  if (stored === undefined && invalid === undefined) return undefined;
  return { tenant, service, stored, invalid, revision: Math.max(stored?.revision ?? 0, invalid?.revision ?? 0) };
}

/** The service's key as it is, valid or not: GET, replace and delete work on it. */
export function requireServiceEntry(ctx: ApiContext, tenant: string, service: string): ServiceEntry {
  requireTenant(ctx, tenant);
  const entry = findService(ctx, tenant, service);
  if (entry === undefined) throw notFound('path.service', `no service "${service}" in tenant "${tenant}"`);
  return entry;
}

/** The service's valid record; one whose stored record is invalid must be replaced or deleted first (409). */
export function requireService(ctx: ApiContext, tenant: string, service: string): StoredService {
  const entry = requireServiceEntry(ctx, tenant, service);
  if (entry.invalid !== undefined || entry.stored === undefined) {
    throw conflict(
      'path.service',
      `the stored record of service "${service}" is invalid (${entry.invalid?.reason ?? 'unreadable'}); replace it with PUT and If-Match: "${entry.revision}", or delete it`,
    );
  }
  return entry.stored;
}

/** A write's preconditions (If-Match, If-None-Match) judged against the record as it is now; 412 when one fails. */
export function checkPreconditions(
  headers: { 'if-match'?: string; 'if-none-match'?: string },
  existing: { revision: number } | undefined,
  what: string,
): void {
  const failure = evaluatePreconditions(parsePreconditions(headers), existing?.revision, what);
  if (failure !== undefined) throw preconditionFailed(failure);
}

/**
 * The compare-and-set that makes a write apply to exactly the state it was judged against:
 * the view gives the early, well-worded answer; the KV revision check stays the authority when
 * another writer (another replica) races in between.
 */
export function writeCondition(existing: { revision: number } | undefined): WriteCondition {
  return existing === undefined ? { ifAbsent: true } : { ifRevision: existing.revision };
}

/** How often a write is judged and tried again after losing a compare-and-set race. */
const writeAttempts = 3;

/** Runs a write again, against the state that won, when another writer changed the record first. */
export async function retryOnConflict<T>(ctx: ApiContext, write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof RevisionConflict) || attempt >= writeAttempts) throw err;
      await ctx.store.catchUp();
    }
  }
}

export function setETag(reply: FastifyReply, revision: number): void {
  reply.header('etag', `"${revision}"`);
}

export function tenantView(ctx: ApiContext, stored: StoredTenant): TenantView {
  return {
    name: stored.record.name,
    domains: stored.record.spec.domains,
    services: ctx.store.view.services(stored.record.name).length,
    revision: stored.revision,
    updatedAt: stored.record.updatedAt,
  };
}

/** A service with its status; when the status provider fails, the spec-derived status stands in. */
export async function serviceView(ctx: ApiContext, entry: StoredService | ServiceEntry): Promise<ServiceView> {
  const { stored, invalid } = 'record' in entry ? { stored: entry, invalid: undefined } : entry;
  const recordErrors = invalid === undefined ? [] : [{ source: 'record' as const, field: '(record)', message: invalid.reason }];
  if (stored === undefined) {
    // Nothing valid was ever stored under this key: only the error to show.
    const { tenant, service } = entry as ServiceEntry;
    const revision = invalid?.revision ?? 0;
    return {
      tenant,
      name: service,
      revision,
      updatedAt: 0,
      spec: null,
      status: { specRevision: revision, revisions: [], xds: null },
      errors: recordErrors,
    };
  }
  const { tenant, name, spec, updatedAt } = stored.record;
  const ref = { tenant, service: name, spec, specRevision: stored.revision };
  const fromSpec = statusFromSpec(ref);
  let status = fromSpec;
  if (ctx.status !== undefined) {
    try {
      status = await ctx.status(ref, fromSpec);
    } catch (err) {
      ctx.logger.warn({ err, tenant, service: name }, 'status provider failed; answering with the spec-derived status');
    }
  }
  const revision = Math.max(stored.revision, invalid?.revision ?? 0);
  const translationErrors = ctx
    .translationErrors(tenant, name)
    .map((e) => ({ source: 'translation' as const, field: e.field, message: e.message }));
  return { tenant, name, revision, updatedAt, spec: publicSpec(spec), status, errors: [...recordErrors, ...translationErrors] };
}

/**
 * The spec as answers show it: TLS secrets are write-only, so `tls` shows what the certificate
 * is (subject, SANs, validity, fingerprint), never the private key.
 */
export function publicSpec(spec: ServiceSpec): Record<string, unknown> {
  if (spec.tls === undefined) return spec;
  const { certificateChain, redirectHttp } = spec.tls;
  return { ...spec, tls: { redirectHttp, certificate: certificateSummary(certificateChain) ?? null } };
}
