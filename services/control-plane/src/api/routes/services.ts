import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { describeIssues, serviceSpec, trafficSplit, type ServiceRecord, type ServiceSpec } from '@switchyard/shared';
import { z } from 'zod';
import { isDeepStrictEqual } from 'node:util';
import { checkService, type StoredService } from '../../store/index.js';
import {
  checkPreconditions,
  findService,
  requireService,
  requireServiceEntry,
  requireTenant,
  retryOnConflict,
  serviceView,
  setETag,
  writeCondition,
  type ApiContext,
} from '../context.js';
import { ApiError } from '../errors.js';
import { specChangeConflict } from '../../deployment/begin.js';
import { statusEventOf } from '../events.js';
import {
  conditionalHeaders,
  errorResponses as errors,
  serviceParams,
  serviceSummary,
  serviceView as serviceViewSchema,
  tenantParams,
  trafficBody,
} from '../schemas.js';

/** Checks a spec against the tenant's grant, the endpoint allowlist and the tenant's other services. */
function enforcePolicy(ctx: ApiContext, tenant: string, service: string, spec: ServiceSpec): void {
  const result = checkService({
    tenant,
    service,
    spec,
    grants: requireTenant(ctx, tenant).record.spec.domains,
    siblings: ctx.store.view.services(tenant).map((s) => ({ name: s.record.name, domains: s.record.spec.domains })),
    allowlist: ctx.allowlist,
    imageRegistries: ctx.imageRegistries,
    now: Date.now(),
  });
  if (!result.ok) throw new ApiError(result.status, result.issues);
}

export function registerServiceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const view = ctx.store.view;

  api.put(
    '/v1/tenants/:tenant/services/:service',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Create or replace a service',
        description:
          'The body is a ServiceSpec; it creates the service (201) or replaces it (200), also a stored record that ' +
          'fails the current schema. A spec equal to the stored one changes nothing (200, same ETag, no event). ' +
          'If-Match / If-None-Match make it conditional (412 when they do not hold). 400: the spec is invalid; ' +
          "403: a domain outside the tenant's grant or an endpoint address the operator does not allow; 409: a host " +
          'another service of the tenant serves, or a revision an active deployment still needs (the message names ' +
          'the deployment); 413: too large for the config store.',
        tags: ['services'],
        params: serviceParams,
        headers: conditionalHeaders,
        body: serviceSpec,
        response: { 200: serviceViewSchema, 201: serviceViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      const spec = request.body;
      const stored = await ctx.exclusive(() =>
        retryOnConflict(ctx, async () => {
          requireTenant(ctx, tenant);
          // The newest entry, valid or not: an invalid stored record is replaced like any other.
          const existing = findService(ctx, tenant, service);
          checkPreconditions(request.headers, existing, `service "${service}"`);
          reply.code(existing === undefined ? 201 : 200);
          const previous = existing?.invalid === undefined ? existing?.stored : undefined;
          if (previous !== undefined && sameSpec(previous.record.spec, spec)) return previous;
          enforcePolicy(ctx, tenant, service, spec);
          const deploying = specChangeConflict(view.deployment(tenant, service)?.record, spec);
          if (deploying !== undefined) throw new ApiError(deploying.status, [{ field: deploying.field, message: deploying.message }]);
          const now = Date.now();
          // createdAt survives updates: the translator resolves host conflicts in favour of the older service.
          const createdAt = previous?.record.createdAt ?? previous?.record.updatedAt ?? now;
          const record: ServiceRecord = { schemaVersion: 1, tenant, name: service, spec, createdAt, updatedAt: now };
          const revision = await ctx.store.putService(record, writeCondition(existing));
          await ctx.publishStatus(statusEventOf(record, 'applied', revision));
          return requireService(ctx, tenant, service);
        }),
      );
      setETag(reply, stored.revision);
      return serviceView(ctx, stored);
    },
  );

  api.get(
    '/v1/tenants/:tenant/services/:service',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Read a service: its spec and its status',
        tags: ['services'],
        params: serviceParams,
        response: { 200: serviceViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const entry = requireServiceEntry(ctx, request.params.tenant, request.params.service);
      setETag(reply, entry.revision);
      return serviceView(ctx, entry);
    },
  );

  api.get(
    '/v1/tenants/:tenant/services',
    {
      config: { access: 'tenant' },
      schema: {
        summary: "List a tenant's services",
        tags: ['services'],
        params: tenantParams,
        response: { 200: z.object({ services: z.array(serviceSummary) }), ...errors },
      },
    },
    async (request) => {
      requireTenant(ctx, request.params.tenant);
      return {
        services: view.services(request.params.tenant).map(({ record, revision }) => ({
          name: record.name,
          domains: record.spec.domains,
          protocol: record.spec.protocol,
          revisions: record.spec.revisions.map((r) => r.name),
          traffic: trafficSplit(record.spec),
          revision,
          updatedAt: record.updatedAt,
        })),
      };
    },
  );

  api.delete(
    '/v1/tenants/:tenant/services/:service',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Delete a service',
        tags: ['services'],
        params: serviceParams,
        headers: conditionalHeaders,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      await ctx.exclusive(() =>
        retryOnConflict(ctx, async () => {
          const entry = requireServiceEntry(ctx, tenant, service);
          checkPreconditions(request.headers, entry, `service "${service}"`);
          await ctx.store.deleteService(tenant, service, entry.revision);
          // A deployment record outlives nothing it deploys.
          const deployment = view.deployment(tenant, service);
          if (deployment !== undefined) await ctx.store.deleteDeployment(tenant, service, deployment.revision);
          if (entry.stored !== undefined) await ctx.publishStatus(statusEventOf(entry.stored.record, 'deleted', entry.revision));
        }),
      );
      return reply.code(204).send(null);
    },
  );

  api.put(
    '/v1/tenants/:tenant/services/:service/traffic',
    {
      config: { access: 'tenant' },
      schema: {
        summary: "Set a service's traffic split between its revisions",
        description:
          'Percentages per revision, summing to 100. With If-Match the change applies only to that version of the service ' +
          '(412 otherwise); without it, to the current one.',
        tags: ['services'],
        params: serviceParams,
        headers: conditionalHeaders,
        body: trafficBody,
        response: { 200: serviceViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      const stored = await ctx.exclusive(() =>
        retryOnConflict(ctx, async () => {
          const current = requireService(ctx, tenant, service);
          checkPreconditions(request.headers, current, `service "${service}"`);
          return setTraffic(ctx, current, request.body.traffic);
        }),
      );
      setETag(reply, stored.revision);
      return serviceView(ctx, stored);
    },
  );
}

/** Whether a spec (as parsed, defaults filled) equals the stored one: applying it again changes nothing. */
function sameSpec(stored: ServiceSpec, spec: ServiceSpec): boolean {
  return isDeepStrictEqual(stored, JSON.parse(JSON.stringify(spec)));
}

async function setTraffic(
  ctx: ApiContext,
  current: StoredService,
  traffic: z.infer<typeof trafficBody>['traffic'],
): Promise<StoredService> {
  const parsed = serviceSpec.safeParse({ ...current.record.spec, traffic });
  if (!parsed.success) {
    // Only the traffic changed, so every issue is about the body's traffic list.
    throw new ApiError(400, describeIssues(parsed.error));
  }
  if (sameSpec(current.record.spec, parsed.data)) return current;
  const record: ServiceRecord = { ...current.record, spec: parsed.data, updatedAt: Date.now() };
  const revision = await ctx.store.putService(record, { ifRevision: current.revision });
  await ctx.publishStatus(statusEventOf(record, 'traffic', revision));
  return requireService(ctx, record.tenant, record.name);
}
