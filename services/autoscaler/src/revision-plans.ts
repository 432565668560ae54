import {
  buckets,
  deploymentActive,
  followBucket,
  deploymentRecord,
  parseConfigKey,
  serviceRecord,
  type DeploymentRecord,
  trafficSplit,
  type HealthCheckSpec,
  type KvChange,
  type NatsConnection,
  type Logger,
  type RevisionRef,
  type ScalingSpec,
  type ServiceRecord,
} from '@switchyard/shared';

/**
 * What the autoscaler needs from the desired state: one plan per revision of every service
 * in the config bucket, and a watcher that loads the whole bucket before following changes.
 */

export type RevisionSource =
  | { kind: 'command'; command: string | string[]; env: Record<string, string> }
  | { kind: 'image'; image: string; env: Record<string, string> }
  /** Endpoints given in the spec: the control plane translates them directly, nothing to run or scale. */
  | { kind: 'static' };

export interface RevisionPlan {
  ref: RevisionRef;
  source: RevisionSource;
  scaling: ScalingSpec;
  healthCheck: HealthCheckSpec;
  /** Share of the service's traffic; only revisions with a share above 0 keep instances. */
  trafficPercent: number;
  /**
   * A deployment in progress needs this revision running whatever its share: the new revision
   * must reach its minimum before traffic shifts, the previous one must stay up for a rollback.
   */
  deploying: boolean;
}

export function revisionKey(ref: RevisionRef): string {
  return `${ref.tenant}/${ref.service}/${ref.revision}`;
}

/**
 * The plans for a service's revisions. A revision needs instances while it receives traffic
 * or a deployment in progress names it: other revisions at 0 % (or missing from the split)
 * are drained to zero.
 */
export function revisionPlans(record: ServiceRecord, deployment?: DeploymentRecord): RevisionPlan[] {
  const { spec } = record;
  const split = new Map(trafficSplit(spec).map((t) => [t.revision, t.percent]));
  const deploying = new Set(deploymentActive(deployment) ? [deployment?.revision, deployment?.previousRevision] : []);
  return spec.revisions.map((revision) => {
    const source: RevisionSource =
      revision.command !== undefined
        ? { kind: 'command', command: revision.command, env: revision.env }
        : revision.image !== undefined
          ? { kind: 'image', image: revision.image, env: revision.env }
          : { kind: 'static' };
    return {
      ref: { tenant: record.tenant, service: record.name, revision: revision.name },
      source,
      scaling: spec.scaling,
      healthCheck: spec.healthCheck,
      trafficPercent: split.get(revision.name) ?? 0,
      deploying: deploying.has(revision.name),
    };
  });
}

export interface ServiceChange {
  tenant: string;
  service: string;
  /** The service's record, or null when it was deleted. */
  record: ServiceRecord | null;
}

export interface DeploymentChange {
  tenant: string;
  service: string;
  /** The service's deployment, or null when it was deleted. */
  record: DeploymentRecord | null;
}

export interface ServiceWatch {
  stop(): Promise<void>;
}

/**
 * Loads every service and deployment record in the config bucket (calling `onChange` and
 * `onDeployment` for each), then follows every change, re-watching after a reconnect or when
 * the watch ends (the shared {@link followBucket}). Records that fail their schema are logged
 * and skipped: the revision keeps running on the last valid record.
 */
export async function watchServices(
  nc: NatsConnection,
  logger: Logger,
  onChange: (change: ServiceChange) => void,
  onInvalid: (key: string) => void,
  onDeployment: (change: DeploymentChange) => void = () => undefined,
): Promise<ServiceWatch> {
  const apply = (entry: KvChange) => {
    const parsed = parseConfigKey(entry.key);
    if (parsed?.kind !== 'service' && parsed?.kind !== 'deployment') return;
    const { tenant, service } = parsed;
    if (entry.operation !== 'PUT') {
      (parsed.kind === 'service' ? onChange : onDeployment)({ tenant, service, record: null });
      return;
    }
    const schema = parsed.kind === 'service' ? serviceRecord : deploymentRecord;
    const result = schema.safeParse(parseJson(entry.value));
    const named =
      result.success && result.data.tenant === tenant && ('name' in result.data ? result.data.name : result.data.service) === service;
    if (!result.success || !named) {
      onInvalid(entry.key);
      logger.warn({ key: entry.key, revision: entry.revision }, `ignored a ${parsed.kind} record that fails its schema`);
      return;
    }
    if (parsed.kind === 'service') onChange({ tenant, service, record: result.data as ServiceRecord });
    else onDeployment({ tenant, service, record: result.data as DeploymentRecord });
  };
  const follower = await followBucket(nc, buckets.config, {}, { logger }, apply);
  await follower.caughtUp;
  return { stop: () => follower.stop() };
}

function parseJson(value: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(value));
  } catch {
    return undefined;
  }
}
