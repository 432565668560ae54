import {
  configKeys,
  parseConfigKey,
  serviceRecord,
  trafficSplit,
  type HealthCheckSpec,
  type KV,
  type KvEntry,
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
}

export function revisionKey(ref: RevisionRef): string {
  return `${ref.tenant}/${ref.service}/${ref.revision}`;
}

/**
 * The plans for a service's revisions. A revision needs instances while it receives traffic:
 * revisions at 0 % (or missing from the split) are drained to zero.
 */
export function revisionPlans(record: ServiceRecord): RevisionPlan[] {
  const { spec } = record;
  const split = new Map(trafficSplit(spec).map((t) => [t.revision, t.percent]));
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
    };
  });
}

export interface ServiceChange {
  tenant: string;
  service: string;
  /** The service's record, or null when it was deleted. */
  record: ServiceRecord | null;
}

export interface ServiceWatch {
  stop(): void;
  /** Resolves when the watch ends (stopped, or the connection closed). */
  done: Promise<void>;
}

/**
 * Loads every service record in the config bucket (calling `onChange` for each) and then
 * follows changes from the bucket's stream position at the time of the load, so nothing
 * written in between is missed. Records that fail their schema are logged and skipped: the
 * revision keeps running on the last valid record.
 */
export async function watchServices(
  kv: KV,
  logger: Logger,
  onChange: (change: ServiceChange) => void,
  onInvalid: (key: string) => void,
): Promise<ServiceWatch> {
  const seen = new Map<string, number>();
  const apply = (entry: KvEntry) => {
    const parsed = parseConfigKey(entry.key);
    if (parsed?.kind !== 'service') return;
    if ((seen.get(entry.key) ?? 0) >= entry.revision) return;
    seen.set(entry.key, entry.revision);
    if (entry.operation !== 'PUT') {
      onChange({ tenant: parsed.tenant, service: parsed.service, record: null });
      return;
    }
    let raw: unknown;
    try {
      raw = entry.json();
    } catch {
      raw = undefined;
    }
    const result = serviceRecord.safeParse(raw);
    if (!result.success || result.data.tenant !== parsed.tenant || result.data.name !== parsed.service) {
      onInvalid(entry.key);
      logger.warn({ key: entry.key, revision: entry.revision }, 'ignored a service record that fails its schema');
      return;
    }
    onChange({ tenant: parsed.tenant, service: parsed.service, record: result.data });
  };

  const status = await kv.status();
  const position = status.streamInfo.state.last_seq;
  const keys: string[] = [];
  for await (const key of await kv.keys(configKeys.allServices)) keys.push(key);
  for (const key of keys) {
    const entry = await kv.get(key);
    if (entry !== null) apply(entry);
  }
  const watcher = await kv.watch({ key: configKeys.allServices, resumeFromRevision: position + 1 });
  const done = (async () => {
    for await (const entry of watcher) apply(entry);
  })();
  return { stop: () => watcher.stop(), done };
}
