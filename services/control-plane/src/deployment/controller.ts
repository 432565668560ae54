import { serviceSpec, trafficSplit, type DeploymentRecord, type Logger } from '@switchyard/shared';
import { RevisionConflict, type ConfigStore, type StoredDeployment } from '../store/index.js';
import { statusEventOf, type DeployEvent, type DeployPublisher, type StatusPublisher } from '../api/events.js';
import { observeRevision } from './observe.js';
import { planDeployment, type PlannerSettings, type PlannerStep } from './planner.js';
import type { BusInputs } from '../controller/bus-inputs.js';

export interface DeploymentControllerDeps {
  store: ConfigStore;
  inputs: BusInputs;
  logger: Logger;
  publishDeployment: DeployPublisher;
  publishStatus: StatusPublisher;
  settings: PlannerSettings;
  /** How often deployments are re-evaluated (bake timers, health, error ratio). */
  intervalMs: number;
  now: () => number;
}

/**
 * Advances every deployment in progress. State lives in the KV (the deployment record and the
 * service's traffic split), written with compare-and-set, so two control-plane replicas may
 * both run this: the second writer of a step loses the race and re-reads. Each deployment is
 * advanced on its own: one that fails is logged and retried on the next tick, never stalls
 * the others.
 */
export class DeploymentController {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly deps: DeploymentControllerDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Applies a step the API computed (a manual rollback) the same way the controller applies its own. */
  async apply(stored: StoredDeployment, step: PlannerStep): Promise<void> {
    const { store, now } = this.deps;
    const deployment = stored.record;
    const service = store.view.service(deployment.tenant, deployment.service);
    if (service === undefined) return;
    if (step.traffic !== undefined) {
      const record = { ...service.record, spec: serviceSpec.parse({ ...service.record.spec, traffic: step.traffic }), updatedAt: now() };
      const revision = await store.putService(record, { ifRevision: service.revision });
      await this.deps.publishStatus(statusEventOf(record, 'traffic', revision));
    }
    if (step.changed) {
      await store.putDeployment(step.deployment, { ifRevision: stored.revision });
      const traffic = step.traffic ?? trafficSplit(service.record.spec);
      await this.deps.publishDeployment(
        eventOf(step.deployment, traffic, this.deps.inputs, service.record.spec.scaling.minInstances, now()),
      );
    }
  }

  async tick(now = this.deps.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const stored of this.deps.store.view.deployments()) await this.advance(stored, now);
    } finally {
      this.running = false;
    }
  }

  private async advance(stored: StoredDeployment, now: number): Promise<void> {
    const deployment = stored.record;
    if (deployment.phase !== 'scaling' && deployment.phase !== 'baking') return;
    const service = this.deps.store.view.service(deployment.tenant, deployment.service);
    if (service === undefined) return;
    const ref = { tenant: deployment.tenant, service: deployment.service, deployment: deployment.id };
    try {
      const observed = observeRevision(deployment, service.record.spec.scaling.minInstances, this.deps.inputs, now);
      const step = planDeployment(deployment, observed, now, this.deps.settings);
      if (!step.changed) return;
      await this.apply(stored, step);
      this.deps.logger.info({ ...ref, phase: step.deployment.phase }, step.deployment.message);
    } catch (err) {
      // A conflict: another writer (a replica, the API) changed it first; the next tick re-reads.
      if (err instanceof RevisionConflict) return;
      this.deps.logger.error({ err, ...ref }, 'deployment step failed; retrying on the next tick');
    }
  }
}

/** The deploy event for a step: which revision, the split now in force, healthy instances, errors. */
export function eventOf(
  deployment: DeploymentRecord,
  traffic: { revision: string; percent: number }[],
  inputs: BusInputs,
  minInstances: number,
  now: number,
): DeployEvent {
  const observed = observeRevision(deployment, minInstances, inputs, now);
  const phase: DeployEvent['phase'] =
    deployment.phase === 'scaling' ? 'started' : deployment.phase === 'baking' ? 'shifting' : deployment.phase;
  return {
    tenant: deployment.tenant,
    service: deployment.service,
    deploymentId: deployment.id,
    phase,
    revision: deployment.revision,
    previousRevision: deployment.previousRevision,
    traffic,
    healthyInstances: observed.healthyInstances,
    desiredInstances: observed.requiredInstances,
    errorRatio: observed.errorRatio,
    message: deployment.message,
  };
}
