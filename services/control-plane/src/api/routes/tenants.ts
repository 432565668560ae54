import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { tenantSpec } from '@switchyard/shared';
import { z } from 'zod';
import { checkTenantGrant } from '../../store/index.js';
import { hashToken, newToken } from '../auth.js';
import { isDeepStrictEqual } from 'node:util';
import { checkPreconditions, requireTenant, retryOnConflict, setETag, tenantView, writeCondition, type ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { conditionalHeaders, errorResponses as errors, tenantParams, tenantView as tenantViewSchema, tokenIssued } from '../schemas.js';

export function registerTenantRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const view = ctx.store.view;

  api.put(
    '/v1/tenants/:tenant',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a tenant or replace its domain grant',
        description:
          'Each granted domain covers itself and every subdomain. Grants of two tenants may not overlap (409), and a grant ' +
          "may not drop a domain one of the tenant's services uses (409). Creates (201) or replaces (200); the same grant again " +
          'changes nothing. If-Match / If-None-Match make it conditional (412 when they do not hold).',
        tags: ['tenants'],
        params: tenantParams,
        headers: conditionalHeaders,
        body: tenantSpec,
        response: { 200: tenantViewSchema, 201: tenantViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      const domains = request.body.domains;
      const stored = await ctx.exclusive(() =>
        retryOnConflict(ctx, async () => {
          const existing = view.tenant(tenant);
          checkPreconditions(request.headers, existing, `tenant "${tenant}"`);
          reply.code(existing === undefined ? 201 : 200);
          if (existing !== undefined && isDeepStrictEqual(existing.record.spec.domains, domains)) return existing;
          const grant = checkTenantGrant({
            tenant,
            domains,
            otherTenants: view.tenants().map((t) => ({ name: t.record.name, domains: t.record.spec.domains })),
            services: view.services(tenant).map((s) => ({ name: s.record.name, domains: s.record.spec.domains })),
          });
          if (!grant.ok) throw new ApiError(grant.status, grant.issues);
          const record = { schemaVersion: 1 as const, name: tenant, spec: { domains }, updatedAt: Date.now() };
          await ctx.store.putTenant(record, writeCondition(existing));
          return requireTenant(ctx, tenant);
        }),
      );
      setETag(reply, stored.revision);
      return tenantView(ctx, stored);
    },
  );

  api.get(
    '/v1/tenants',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List tenants',
        tags: ['tenants'],
        response: { 200: z.object({ tenants: z.array(tenantViewSchema) }), ...errors },
      },
    },
    async () => ({ tenants: view.tenants().map((t) => tenantView(ctx, t)) }),
  );

  api.get(
    '/v1/tenants/:tenant',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Read a tenant and its grant',
        tags: ['tenants'],
        params: tenantParams,
        response: { 200: tenantViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const stored = requireTenant(ctx, request.params.tenant);
      setETag(reply, stored.revision);
      return tenantView(ctx, stored);
    },
  );

  api.delete(
    '/v1/tenants/:tenant',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a tenant and everything under it: its services, deployments and tokens',
        tags: ['tenants'],
        params: tenantParams,
        headers: conditionalHeaders,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      await ctx.exclusive(() =>
        retryOnConflict(ctx, async () => {
          const stored = requireTenant(ctx, tenant);
          checkPreconditions(request.headers, stored, `tenant "${tenant}"`);
          await ctx.store.deleteTenantTree(tenant, stored.revision);
        }),
      );
      return reply.code(204).send(null);
    },
  );

  api.post(
    '/v1/tenants/:tenant/tokens',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Issue a token for a tenant',
        description: 'The token reaches only this tenant. The response is the only place the secret appears.',
        tags: ['tenants'],
        params: tenantParams,
        response: { 201: tokenIssued, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      requireTenant(ctx, tenant);
      const token = newToken();
      await ctx.store.putToken(hashToken(token), { schemaVersion: 1, tenant, createdAt: Date.now() });
      return reply.code(201).send({ tenant, token });
    },
  );
}
