import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { tenantSpec } from '@switchyard/shared';
import { z } from 'zod';
import { checkTenantGrant } from '../../store/index.js';
import { hashToken, newToken } from '../auth.js';
import { ifMatchRevision, putCondition, requireTenant, setETag, tenantView, checkRevision, type ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import {
  conditionalHeaders,
  errorBody,
  optionalConditionHeaders,
  tenantParams,
  tenantView as tenantViewSchema,
  tokenIssued,
} from '../schemas.js';

const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };

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
          "may not drop a domain one of the tenant's services uses (409). Without If-Match the tenant must not exist yet.",
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
      return ctx.exclusive(async () => {
        const existing = view.tenant(tenant);
        const condition = putCondition(request.headers['if-match'], existing, `tenant "${tenant}"`);
        const grant = checkTenantGrant({
          tenant,
          domains,
          otherTenants: view.tenants().map((t) => ({ name: t.record.name, domains: t.record.spec.domains })),
          services: view.services(tenant).map((s) => ({ name: s.record.name, domains: s.record.spec.domains })),
        });
        if (!grant.ok) throw new ApiError(grant.status, grant.issues);
        const revision = await ctx.store.putTenant({ schemaVersion: 1, name: tenant, spec: { domains }, updatedAt: Date.now() }, condition);
        setETag(reply, revision);
        reply.code(existing === undefined ? 201 : 200);
        return tenantView(ctx, requireTenant(ctx, tenant));
      });
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
        headers: optionalConditionHeaders,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      return ctx.exclusive(async () => {
        const stored = requireTenant(ctx, tenant);
        const expected = ifMatchRevision(request.headers['if-match']);
        if (expected !== undefined) checkRevision(expected, stored.revision, `tenant "${tenant}"`);
        await ctx.store.deleteTenantTree(tenant, expected ?? stored.revision);
        return reply.code(204).send(null);
      });
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
