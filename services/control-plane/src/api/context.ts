import type { FastifyReply } from 'fastify';
import type { ConfigStore, EndpointAllowlist, InvalidEntry, StoredService, StoredTenant, WriteCondition } from '../store/index.js';
import type { Authenticator } from './auth.js';
import { badRequest, conflict, notFound } from './errors.js';
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

/** The revision an `If-Match` header names: `"42"` (an ETag as sent) or a bare `42`. */
export function ifMatchRevision(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*(?:"(\d+)"|(\d+))\s*$/.exec(header);
  if (match === null) throw badRequest('header.if-match', `must be the ETag of a version, e.g. "42" (got ${JSON.stringify(header)})`);
  return Number(match[1] ?? match[2]);
}

/**
 * The PUT rule: without `If-Match` a PUT creates and refuses to replace; with it, it replaces
 * exactly that version. The view gives the early, well-worded answer; the KV compare-and-set
 * remains the authority when another writer races in between.
 */
export function putCondition(header: string | undefined, existing: { revision: number } | undefined, what: string): WriteCondition {
  const revision = ifMatchRevision(header);
  if (revision === undefined) {
    if (existing !== undefined) {
      throw conflict(
        'header.if-match',
        `is missing, and ${what} already exists (ETag "${existing.revision}"); send If-Match: "${existing.revision}" to replace it`,
      );
    }
    return { ifAbsent: true };
  }
  if (existing === undefined)
    throw conflict('header.if-match', `names "${revision}", but ${what} does not exist; send no If-Match to create it`);
  checkRevision(revision, existing.revision, what);
  return { ifRevision: revision };
}

export function checkRevision(expected: number, actual: number, what: string): void {
  if (expected !== actual) {
    throw conflict('header.if-match', `names "${expected}", but ${what} is at "${actual}" now; read it again and retry`);
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
