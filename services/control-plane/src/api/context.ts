import type { FastifyReply } from 'fastify';
import {
  RevisionConflict,
  type ConfigStore,
  type EndpointAllowlist,
  type StoredService,
  type StoredTenant,
  type WriteCondition,
} from '../store/index.js';
import type { Authenticator } from './auth.js';
import { notFound, preconditionFailed } from './errors.js';
import { evaluatePreconditions, parsePreconditions } from './preconditions.js';
import type { StatusPublisher } from './events.js';
import type { ServiceView, TenantView } from './schemas.js';
import { statusFromSpec, type NodesProvider, type ServiceStatusProvider } from './status.js';
import type { Logger } from '@switchyard/shared';

/** What every route handler works with. */
export interface ApiContext {
  store: ConfigStore;
  allowlist: EndpointAllowlist;
  auth: Authenticator;
  logger: Logger;
  publishStatus: StatusPublisher;
  status: ServiceStatusProvider | undefined;
  nodes: NodesProvider;
  /** Runs writes one at a time, so each is validated against the state the previous one left. */
  exclusive<T>(write: () => Promise<T>): Promise<T>;
}

export function requireTenant(ctx: ApiContext, tenant: string): StoredTenant {
  const stored = ctx.store.view.tenant(tenant);
  if (stored === undefined) throw notFound('path.tenant', `no tenant "${tenant}"`);
  return stored;
}

export function requireService(ctx: ApiContext, tenant: string, service: string): StoredService {
  requireTenant(ctx, tenant);
  const stored = ctx.store.view.service(tenant, service);
  if (stored === undefined) throw notFound('path.service', `no service "${service}" in tenant "${tenant}"`);
  return stored;
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
export async function serviceView(ctx: ApiContext, stored: StoredService): Promise<ServiceView> {
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
  return { tenant, name, revision: stored.revision, updatedAt, spec, status };
}
