import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { describeIssues, serviceSpec, trafficSplit, type ServiceRecord, type ServiceSpec } from '@switchyard/shared';
import { z } from 'zod';
import { RevisionConflict, checkService, type StoredService } from '../../store/index.js';
import {
  checkRevision,
  findService,
  ifMatchRevision,
  putCondition,
  requireService,
  requireServiceEntry,
  requireTenant,
  serviceView,
  setETag,
  type ApiContext,
} from '../context.js';
import { ApiError } from '../errors.js';
import { specChangeConflict } from '../../deployment/begin.js';
import { statusEventOf } from '../events.js';
import {
  conditionalHeaders,
  errorBody,
  optionalConditionHeaders,
  serviceParams,
  serviceSummary,
  serviceView as serviceViewSchema,
  tenantParams,
  trafficBody,
} from '../schemas.js';

const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };

/** A read-modify-write without If-Match retries this often when another writer races it. */
const trafficAttempts = 3;

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
          'The body is a ServiceSpec. Without If-Match the service must not exist yet; with it, it replaces exactly that ' +
          "version. 400: the spec is invalid; 403: a domain outside the tenant's grant or an endpoint address the operator " +
          'does not allow; 409: a host another service of the tenant serves, a stale If-Match, or a revision an active ' +
          'deployment still needs (the message names the deployment).',
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
      const stored = await ctx.exclusive(async () => {
        requireTenant(ctx, tenant);
        // The newest entry, valid or not: an invalid stored record is replaced like any other.
        const existing = findService(ctx, tenant, service);
        const condition = putCondition(request.headers['if-match'], existing, `service "${service}"`);
        enforcePolicy(ctx, tenant, service, spec);
        const deploying = specChangeConflict(view.deployment(tenant, service)?.record, spec);
        if (deploying !== undefined) throw new ApiError(deploying.status, [{ field: deploying.field, message: deploying.message }]);
        const now = Date.now();
        // createdAt survives updates: the translator resolves host conflicts in favour of the older service.
        const previous = existing?.stored?.record;
        const createdAt = previous?.createdAt ?? previous?.updatedAt ?? now;
        const record: ServiceRecord = { schemaVersion: 1, tenant, name: service, spec, createdAt, updatedAt: now };
        const revision = await ctx.store.putService(record, condition);
        await ctx.publishStatus(statusEventOf(record, 'applied', revision));
        reply.code(existing === undefined ? 201 : 200);
        return requireService(ctx, tenant, service);
      });
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
        headers: optionalConditionHeaders,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      await ctx.exclusive(async () => {
        const entry = requireServiceEntry(ctx, tenant, service);
        const expected = ifMatchRevision(request.headers['if-match']);
        if (expected !== undefined) checkRevision(expected, entry.revision, `service "${service}"`);
        await ctx.store.deleteService(tenant, service, expected ?? entry.revision);
        // A deployment record outlives nothing it deploys.
        const deployment = view.deployment(tenant, service);
        if (deployment !== undefined) await ctx.store.deleteDeployment(tenant, service, deployment.revision);
        if (entry.stored !== undefined) await ctx.publishStatus(statusEventOf(entry.stored.record, 'deleted', entry.revision));
      });
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
          'Percentages per revision, summing to 100. With If-Match the change applies only to that version of the service; ' +
          'without it, to the current one.',
        tags: ['services'],
        params: serviceParams,
        headers: optionalConditionHeaders,
        body: trafficBody,
        response: { 200: serviceViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      const expected = ifMatchRevision(request.headers['if-match']);
      const stored = await ctx.exclusive(async () => {
        for (let attempt = 1; ; attempt++) {
          const current = requireService(ctx, tenant, service);
          if (expected !== undefined) checkRevision(expected, current.revision, `service "${service}"`);
          try {
            return await setTraffic(ctx, current, request.body.traffic);
          } catch (err) {
            if (!(err instanceof RevisionConflict) || expected !== undefined || attempt >= trafficAttempts) throw err;
            await view.waitFor(current.revision + 1, 5000).catch(() => undefined);
          }
        }
      });
      setETag(reply, stored.revision);
      return serviceView(ctx, stored);
    },
  );
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
  const record: ServiceRecord = { ...current.record, spec: parsed.data, updatedAt: Date.now() };
  const revision = await ctx.store.putService(record, { ifRevision: current.revision });
  await ctx.publishStatus(statusEventOf(record, 'traffic', revision));
  return requireService(ctx, record.tenant, record.name);
}
