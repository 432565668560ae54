import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { deploymentRecord, deploymentActive, serviceSpec, trafficSplit, type DeploymentRecord } from '@switchyard/shared';
import { z } from 'zod';
import { beginDeployment, deploymentRequest } from '../../deployment/begin.js';
import { rollBackDeployment, type PlannerStep } from '../../deployment/planner.js';
import type { StoredDeployment } from '../../store/index.js';
import { requireService, type ApiContext } from '../context.js';
import { ApiError, notFound } from '../errors.js';
import { errorResponses as errors, serviceParams } from '../schemas.js';

const deploymentView = deploymentRecord.omit({ schemaVersion: true }).meta({ id: 'Deployment' });
const rollbackBody = z
  .object({ reason: z.string().max(500).optional() })
  .strict()
  .default({});

/** How the API hands a deployment to the controller: publish that it started, apply a manual rollback. */
export interface DeploymentHooks {
  started(deployment: DeploymentRecord): Promise<void>;
  apply(stored: StoredDeployment, step: PlannerStep): Promise<void>;
}

function view({ schemaVersion: _version, ...rest }: DeploymentRecord) {
  return rest;
}

export function registerDeploymentRoutes(app: FastifyInstance, ctx: ApiContext, hooks: DeploymentHooks): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    '/v1/tenants/:tenant/services/:service/deployments',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Deploy a new revision (blue-green or canary)',
        description:
          'Adds a revision from a command or image at 0 % traffic; the control plane shifts traffic to it once its instances are ' +
          'healthy, all at once (blue-green) or in steps with bake times (canary), and rolls back on failing health or a 5xx ' +
          'ratio above maxErrorRatio. Without command and image, an existing revision is deployed again. 409 while another ' +
          'deployment of the service is in progress.',
        tags: ['deployments'],
        params: serviceParams,
        body: deploymentRequest,
        response: { 201: deploymentView, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      const record = await ctx.exclusive(async () => {
        const stored = requireService(ctx, tenant, service);
        const current = ctx.store.view.deployment(tenant, service);
        const begun = beginDeployment({ tenant, service }, stored.record.spec, current?.record, request.body, Date.now());
        if ('status' in begun) throw new ApiError(begun.status, [{ field: begun.field, message: begun.message }]);
        const spec = serviceSpec.parse(begun.spec);
        await ctx.store.putService({ ...stored.record, spec, updatedAt: Date.now() }, { ifRevision: stored.revision });
        await ctx.store.putDeployment(begun.deployment, current === undefined ? { ifAbsent: true } : { ifRevision: current.revision });
        await hooks.started(begun.deployment);
        return begun.deployment;
      });
      reply.code(201);
      return view(record);
    },
  );

  api.get(
    '/v1/tenants/:tenant/services/:service/deployment',
    {
      config: { access: 'tenant' },
      schema: {
        summary: "The service's current or last deployment",
        tags: ['deployments'],
        params: serviceParams,
        response: { 200: deploymentView, ...errors },
      },
    },
    async (request) => {
      const { tenant, service } = request.params;
      requireService(ctx, tenant, service);
      const stored = ctx.store.view.deployment(tenant, service);
      if (stored === undefined) throw notFound('path.service', `service "${service}" has never been deployed`);
      return view(stored.record);
    },
  );

  api.post(
    '/v1/tenants/:tenant/services/:service/rollback',
    {
      config: { access: 'tenant' },
      schema: {
        summary: 'Roll back',
        description:
          'During a deployment: restores the split from before it at once. After a completed deployment: deploys the previous ' +
          'revision again (its instances are started, then traffic shifts back).',
        tags: ['deployments'],
        params: serviceParams,
        body: rollbackBody,
        response: { 200: deploymentView, 201: deploymentView, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant, service } = request.params;
      const reason = request.body.reason ?? 'requested through the API';
      const record = await ctx.exclusive(async () => {
        const stored = requireService(ctx, tenant, service);
        const current = ctx.store.view.deployment(tenant, service);
        if (current === undefined) throw notFound('path.service', `service "${service}" has never been deployed; nothing to roll back`);
        if (deploymentActive(current.record)) {
          const step = rollBackDeployment(current.record, Date.now(), reason);
          await hooks.apply(current, step);
          return step.deployment;
        }
        const target = current.record.phase === 'completed' ? current.record.previousRevision : null;
        if (target === null || !stored.record.spec.revisions.some((r) => r.name === target)) {
          throw new ApiError(409, [
            {
              field: 'path.service',
              message: `the last deployment is ${current.record.phase}; there is no previous revision to return to`,
            },
          ]);
        }
        const begun = beginDeployment(
          { tenant, service },
          stored.record.spec,
          current.record,
          { revision: target, strategy: 'blue-green' },
          Date.now(),
        );
        if ('status' in begun) throw new ApiError(begun.status, [{ field: begun.field, message: begun.message }]);
        const spec = serviceSpec.parse(begun.spec);
        if (trafficSplit(spec).length !== trafficSplit(stored.record.spec).length) {
          await ctx.store.putService({ ...stored.record, spec, updatedAt: Date.now() }, { ifRevision: stored.revision });
        }
        await ctx.store.putDeployment(begun.deployment, { ifRevision: current.revision });
        await hooks.started(begun.deployment);
        reply.code(201);
        return begun.deployment;
      });
      return view(record);
    },
  );
}
