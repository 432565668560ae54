import type { InstanceEvent, RevisionRef } from '@switchyard/shared';
import type { RevisionPlan } from './revision-plans.js';

/**
 * The seam between the autoscaler and whatever runs instances. The autoscaler decides how
 * many instances a revision should serve with, publishes endpoint sets and decides when a
 * draining instance may stop; a provider starts, health-gates, restarts and stops instances.
 *
 * Providers here: `local` (child processes, the all-in-one default), `kubernetes` (image
 * revisions as pods the provider manages, providers/kubernetes.ts) and `static` (runs
 * nothing: revisions with endpoints in their spec go straight from spec to EDS through the
 * control plane).
 */

export type InstanceState = 'starting' | 'ready' | 'draining';

export interface InstanceView {
  id: string;
  address: string;
  port: number;
  state: InstanceState;
  startedAt: number;
}

export type InstanceEventKind = InstanceEvent['event'];

/** What a provider reports back to the autoscaler for one revision. */
export interface RevisionHooks {
  /** An instance appeared, changed state or went away: the endpoint set must be republished. */
  changed(): void;
  /** A lifecycle event, for the bus and the logs. */
  event(instance: string, event: InstanceEventKind, detail: string): void;
  /**
   * Resolves once a draining instance may stop: its in-flight requests finished, or the
   * drain timeout passed. The provider publishes nothing itself: the instance is already
   * `draining` in the revision's endpoint set when this is called.
   */
  drained(instance: InstanceView): Promise<void>;
}

/** One revision's instances as a provider runs them. */
export interface RevisionInstances {
  /**
   * Keep `count` instances of the current spec serving (starting or ready). Surplus ones
   * are retired: starting ones stop at once, ready ones drain first (newest first); a
   * draining one is put back into service before a new one is started.
   */
  scale(count: number): void;
  /** New launch settings (command, env, health check): instances are replaced by new ones as those become ready. */
  update(plan: RevisionPlan): void;
  /** Replaces an instance (e.g. unhealthy): a new one starts and the old one drains once it is ready. */
  replace(instanceId: string): void;
  /** Current instances; stopped and exited ones are gone. */
  instances(): InstanceView[];
  /** Retires every instance (ready ones drain) and resolves when all have stopped. */
  close(): Promise<void>;
  /**
   * Hands the instances over to the next leader: they keep running and this object stops
   * acting on them (no restarts, stops or drains). Used when this replica loses the lease.
   */
  release(): void;
}

export type RunnableSource = 'command' | 'image';

export interface InstanceProvider {
  readonly name: string;
  /** The revision sources this provider runs. */
  readonly runs: readonly RunnableSource[];
  /**
   * Takes charge of a revision. Resolves once the instances already running for it (started
   * by an earlier leader) are known, so that the first endpoint set published includes them.
   */
  open(plan: RevisionPlan, hooks: RevisionHooks): Promise<RevisionInstances>;
  /**
   * Run when this replica becomes the leader, with the revisions it manages: stops what an
   * earlier autoscaler left running for any other revision (the local provider; the
   * kubernetes provider has none).
   */
  stopUnwanted?(wanted: (ref: RevisionRef) => boolean): Promise<void>;
}

/** Every INSTANCE_PROVIDER and the revision sources it runs; each provider's `runs` is its entry here. */
export const providerSources = { local: ['command'], static: [] } as const satisfies Record<string, readonly RunnableSource[]>;

/** Why `provider` cannot run a revision, naming the providers that can, or undefined when it can (static revisions need none). */
export function notRunnableReason(provider: InstanceProvider, plan: RevisionPlan): string | undefined {
  const kind = plan.source.kind;
  if (kind === 'static' || provider.runs.includes(kind)) return undefined;
  const what = kind === 'image' ? 'images' : 'commands';
  const able = Object.entries(providerSources)
    .filter(([, runs]) => (runs as readonly RunnableSource[]).includes(kind))
    .map(([name]) => name);
  const instead =
    able.length === 0
      ? `no instance provider of this Switchyard runs ${what} (${providerList()})`
      : `INSTANCE_PROVIDER=${able.join(' or ')} runs ${what}`;
  return `revision has ${kind === 'image' ? 'an image' : 'a command'}, but the configured instance provider "${provider.name}" runs no ${what}; ${instead}`;
}

function providerList(): string {
  return Object.entries(providerSources)
    .map(([name, runs]) => `${name} runs ${runs.length === 0 ? 'nothing' : runs.map((r) => `${r}s`).join(', ')}`)
    .join('; ');
}

/** The provider for INSTANCE_PROVIDER=static: it runs nothing; only revisions with static endpoints are served. */
export const staticProvider: InstanceProvider = {
  name: 'static',
  runs: providerSources.static,
  open() {
    throw new Error('the static instance provider runs no instances');
  },
};
