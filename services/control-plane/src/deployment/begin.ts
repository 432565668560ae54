import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { deploymentActive, dnsLabel, duration, trafficSplit, type DeploymentRecord, type ServiceSpec } from '@switchyard/shared';

/** A request to deploy: a new revision from a command or image, or an existing revision (a rollback). */
export const deploymentRequest = z
  .object({
    /** Name of the new revision; generated when absent. */
    revision: dnsLabel.optional(),
    command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
    image: z.string().min(1).max(512).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
    strategy: z.enum(['blue-green', 'canary']).optional(),
    steps: z.array(z.number().int().min(1).max(100)).min(1).optional(),
    bake: duration.optional(),
    maxErrorRatio: z.number().min(0).max(1).optional(),
  })
  .strict()
  .refine((r) => r.command === undefined || r.image === undefined, { message: 'give either command or image, not both', path: ['image'] });
export type DeploymentRequest = z.output<typeof deploymentRequest>;

export interface Rejection {
  status: 400 | 409;
  field: string;
  message: string;
}

export interface Begun {
  spec: ServiceSpec;
  deployment: DeploymentRecord;
}

/**
 * Starts a deployment: adds the new revision to the spec at 0 % traffic (revisions already at
 * 0 % are pruned — their instances are gone) and records the deployment the controller will
 * advance. Without command or image, the named existing revision is deployed again (rollback).
 */
export function beginDeployment(
  ref: { tenant: string; service: string },
  spec: ServiceSpec,
  current: DeploymentRecord | undefined,
  request: DeploymentRequest,
  now: number,
): Begun | Rejection {
  if (deploymentActive(current)) {
    return {
      status: 409,
      field: 'path.service',
      message: `deployment ${current?.id} of revision ${current?.revision} is still ${current?.phase}; wait or roll it back`,
    };
  }
  const split = trafficSplit(spec);
  const serving = split.filter((t) => t.percent > 0);
  const previous = [...serving].sort((a, b) => b.percent - a.percent)[0]?.revision ?? null;
  const fresh = request.command !== undefined || request.image !== undefined;
  const name = request.revision ?? nextRevisionName(ref.service, [...spec.revisions.map((r) => r.name), current?.revision ?? '']);
  const existing = spec.revisions.find((r) => r.name === name);
  if (fresh && existing !== undefined)
    return { status: 409, field: 'revision', message: `revision "${name}" already exists; pick another name` };
  if (!fresh && existing === undefined) {
    return {
      status: 400,
      field: 'command',
      message: `give a command or an image for the new revision, or name an existing revision to deploy it again`,
    };
  }
  if (!fresh && existing?.endpoints !== undefined)
    return {
      status: 400,
      field: 'revision',
      message: `revision "${name}" has static endpoints, which no deployment starts; shift its traffic instead (PUT …/traffic)`,
    };
  if (!fresh && serving.length === 1 && serving[0]?.revision === name)
    return { status: 409, field: 'revision', message: `revision "${name}" already serves all traffic` };

  const kept = spec.revisions.filter((r) => r.name === name || serving.some((t) => t.revision === r.name));
  const revisions = fresh
    ? [
        ...kept,
        {
          name,
          env: request.env ?? {},
          ...(request.command !== undefined ? { command: request.command } : { image: request.image as string }),
        },
      ]
    : kept;
  const traffic = [...serving, ...(serving.some((t) => t.revision === name) ? [] : [{ revision: name, percent: 0 }])];
  const strategy = request.strategy ?? spec.deployment.strategy;
  const steps = strategy === 'blue-green' ? [100] : (request.steps ?? spec.deployment.steps);
  if (steps.at(-1) !== 100) return { status: 400, field: 'steps', message: 'the last step must be 100' };
  return {
    spec: { ...spec, revisions, traffic },
    deployment: {
      schemaVersion: 1,
      id: randomUUID(),
      tenant: ref.tenant,
      service: ref.service,
      revision: name,
      previousRevision: previous === name ? null : previous,
      previousTraffic: serving,
      strategy,
      steps,
      bakeMs: request.bake ?? spec.deployment.bake,
      maxErrorRatio: request.maxErrorRatio ?? spec.deployment.maxErrorRatio,
      phase: 'scaling',
      stepIndex: -1,
      startedAt: now,
      phaseSince: now,
      message: `starting revision ${name}`,
    },
  };
}

/**
 * A spec change may not remove a revision an active deployment shifts traffic between: the
 * controller's next step would name a revision the spec no longer has. Undefined when the
 * change is fine.
 */
export function specChangeConflict(current: DeploymentRecord | undefined, spec: ServiceSpec): Rejection | undefined {
  if (current === undefined || !deploymentActive(current)) return undefined;
  const names = new Set(spec.revisions.map((r) => r.name));
  const missing = [current.revision, current.previousRevision].filter((name) => name !== null && !names.has(name));
  if (missing.length === 0) return undefined;
  return {
    status: 409,
    field: 'body.revisions',
    message:
      `deployment ${current.id} (${current.previousRevision ?? 'none'} → ${current.revision}) is still ${current.phase} and needs ` +
      `revision ${missing.join(' and ')}; wait for it or roll it back first`,
  };
}

/**
 * The name of a generated revision: the service's name and a sequence number one past the
 * highest it has used (`web-00004`), a DNS label like every revision name.
 */
export function nextRevisionName(service: string, taken: string[]): string {
  const prefix = `${service.slice(0, 56).replace(/-+$/, '')}-`;
  const used = taken.flatMap((name) => {
    const match = name.startsWith(prefix) ? /^\d{5,}$/.exec(name.slice(prefix.length)) : null;
    return match === null ? [] : [Number(match[0])];
  });
  return `${prefix}${String(Math.max(0, ...used) + 1).padStart(5, '0')}`;
}
