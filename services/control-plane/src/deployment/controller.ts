import { trafficSplit, type DeploymentEvent, type DeploymentRecord, type Logger } from '@switchyard/shared';
import { serviceSpec } from '@switchyard/shared';
import { RevisionConflict, type ConfigStore, type StoredDeployment } from '../store/index.js';
import type { StatusEvent } from '../api/index.js';
import { observeRevision } from './observe.js';
import { planDeployment, type PlannerSettings, type PlannerStep } from './planner.js';
import type { BusInputs } from '../controller/bus-inputs.js';

export interface DeploymentControllerDeps {
  store: ConfigStore;
  inputs: BusInputs;
  logger: Logger;
  publishDeployment: (event: Omit<DeploymentEvent, 'schemaVersion' | 'ts'>) => Promise<void>;
  publishStatus: (event: StatusEvent) => Promise<void>;
  settings: PlannerSettings;
  /** How often deployments are re-evaluated (bake timers, health, error ratio). */
  intervalMs: number;
}

/**
 * Advances every deployment in progress. State lives in the KV (the deployment record and the
 * service's traffic split), written with compare-and-set, so two control-plane replicas may
 * both run this: the second writer of a step loses the race and re-reads.
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
    const { store } = this.deps;
    const deployment = stored.record;
    const service = store.view.service(deployment.tenant, deployment.service);
    if (service === undefined) return;
    if (step.traffic !== undefined) {
      const spec = serviceSpec.parse({ ...service.record.spec, traffic: step.traffic });
      const revision = await store.putService({ ...service.record, spec, updatedAt: Date.now() }, { ifRevision: service.revision });
      await this.deps.publishStatus({
        tenant: deployment.tenant,
        service: deployment.service,
        event: 'traffic',
        specRevision: revision,
        revisions: spec.revisions.map((r) => r.name),
        traffic: trafficSplit(spec),
      });
    }
    if (step.changed) {
      await store.putDeployment(step.deployment, { ifRevision: stored.revision });
      await this.deps.publishDeployment(
        eventOf(
          step.deployment,
          step.traffic ?? trafficSplit(service.record.spec),
          this.deps.inputs,
          service.record.spec.scaling.minInstances,
        ),
      );
    }
  }

  async tick(now = Date.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const stored of this.deps.store.view.deployments()) {
        const deployment = stored.record;
        if (deployment.phase !== 'scaling' && deployment.phase !== 'baking') continue;
        const service = this.deps.store.view.service(deployment.tenant, deployment.service);
        if (service === undefined) continue;
        const step = planDeployment(
          deployment,
          observeRevision(deployment, service.record.spec.scaling.minInstances, this.deps.inputs, now),
          now,
          this.deps.settings,
        );
        if (!step.changed) continue;
        try {
          await this.apply(stored, step);
          this.deps.logger.info(
            { tenant: deployment.tenant, service: deployment.service, phase: step.deployment.phase },
            step.deployment.message,
          );
        } catch (err) {
          if (!(err instanceof RevisionConflict)) throw err;
          // Another writer (a replica, the API) changed it first; the next tick re-reads.
        }
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'deployment step failed; retrying on the next tick');
    } finally {
      this.running = false;
    }
  }
}

/** The deploy event for a step: which revision, the split now in force, healthy instances, errors. */
export function eventOf(
  deployment: DeploymentRecord,
  traffic: { revision: string; percent: number }[],
  inputs: BusInputs,
  minInstances: number,
): Omit<DeploymentEvent, 'schemaVersion' | 'ts'> {
  const observed = observeRevision(deployment, minInstances, inputs, Date.now());
  const phase: DeploymentEvent['phase'] =
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
