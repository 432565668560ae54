import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { errorBody, whoami, xdsNodeStatus } from '../schemas.js';

export function registerNodeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(
    '/v1/nodes',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Connected xDS clients: per resource type the version ACKed and the last NACK',
        tags: ['nodes'],
        response: { 200: z.object({ nodes: z.array(xdsNodeStatus) }), 401: errorBody, 403: errorBody },
      },
    },
    async () => ({ nodes: await ctx.nodes() }),
  );

  api.get(
    '/v1/whoami',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'Who the bearer token is: the admin, or a tenant',
        tags: ['auth'],
        response: { 200: whoami, 401: errorBody },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return principal.role === 'admin' ? { role: 'admin' as const, tenant: null } : { role: 'tenant' as const, tenant: principal.tenant };
    },
  );
}
