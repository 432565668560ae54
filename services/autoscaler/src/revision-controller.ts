import type { ActivationPoke, HealthTransition, LoadSample, Logger } from '@switchyard/shared';
import { decide, initialDeciderState, type Decision, type DeciderState } from './decider/decider.js';
import { addPoint } from './decider/window.js';
import type { BusPublisher } from './bus.js';
import type { RevisionPlan } from './revision-plans.js';
import type { AutoscalerMetrics } from './metrics.js';
import type { InstanceEventKind, InstanceProvider, InstanceView, RevisionHooks, RevisionInstances } from './provider.js';

/**
 * One managed revision: feeds its load samples to the decider, applies decisions to the
 * provider, publishes its endpoint sets, decides when draining instances may stop and
 * replaces instances that stay unhealthy. Only the leader acts; a standby keeps the load
 * history so that it decides with full windows from its first sample after a takeover.
 */

export interface RevisionContext {
  now: () => number;
  logger: Logger;
  metrics: AutoscalerMetrics;
  bus: BusPublisher;
  provider: InstanceProvider;
  drainTimeoutMs: number;
  isLeader: () => boolean;
  /** Whether another replica holds the lease (it owns the instances this one handed over). */
  leaderElsewhere: () => boolean;
}

interface PendingDrain {
  startedAt: number;
  resolve: () => void;
}

/** Without samples, decide at this pace so that load that stopped being reported decays. */
const idleDecisionMs = 2000;
/** An activator replica's held count stops counting when it has not repeated it for this long (it pokes every second). */
const pokeStaleMs = 3000;

export class RevisionController {
  private decider: DeciderState;
  private runtime: RevisionInstances | undefined;
  private lastSample: { receivedAt: number; concurrency: number; windowMs: number } | undefined;
  private lastDecision: Decision | undefined;
  private lastDecisionAt = 0;
  private readonly drains = new Map<string, PendingDrain>();
  /** Requests held per activator replica, with when it last said so. */
  private readonly held = new Map<string, { held: number; at: number }>();
  /** Instances reported unhealthy, since when and why: replaced on the tick after their grace period. */
  private readonly unhealthy = new Map<string, { since: number; reason: string }>();
  private endpointsQueued = false;
  private closing: Promise<void> | undefined;
  /** The provider opening the revision for a takeover in progress. */
  private opening: Promise<RevisionInstances | undefined> | undefined;
  /** This replica released its instances on losing the lease and has not led since. */
  private handedOver = false;
  /** Bumped on every leadership change, so a slow takeover that was overtaken gives up. */
  private term = 0;
  private readonly log: Logger;

  constructor(
    private readonly ctx: RevisionContext,
    private plan: RevisionPlan,
  ) {
    this.decider = initialDeciderState(0, ctx.now());
    this.log = ctx.logger.child({ ...plan.ref });
  }

  /**
   * Takes charge: opens the revision in the provider (which takes over the instances still
   * running for it) and only then publishes its endpoint set, so that the set never drops
   * them; resumes at the last known decision.
   */
  async lead(): Promise<void> {
    const term = ++this.term;
    const last = await this.ctx.bus.lastDecision(this.plan.ref).catch((err: unknown) => {
      this.log.warn({ err }, 'could not read the last scale decision; starting from minInstances');
      return undefined;
    });
    if (term !== this.term || !this.ctx.isLeader()) return;
    this.opening = this.open();
    const runtime = await this.opening;
    this.opening = undefined;
    // Closed meanwhile: `closeNow` took the runtime over.
    if (runtime === undefined || this.closing !== undefined) return;
    if (term !== this.term || !this.ctx.isLeader()) {
      runtime.release();
      return;
    }
    runtime.update(this.plan);
    this.handedOver = false;
    const { minInstances, maxInstances } = this.plan.scaling;
    const resume = this.serving ? Math.min(maxInstances, Math.max(minInstances, last?.desired ?? minInstances)) : 0;
    this.decider = initialDeciderState(resume, this.ctx.now(), this.decider.points);
    this.runtime = runtime;
    runtime.scale(resume);
    this.lastDecisionAt = this.ctx.now();
    this.queueEndpoints();
  }

  /** Steps back after losing the lease: the instances keep serving, handed over to the next leader; nothing is published. */
  follow(): void {
    this.term++;
    const runtime = this.runtime;
    this.runtime = undefined;
    runtime?.release();
    if (runtime !== undefined) this.handedOver = true;
  }

  private open(): Promise<RevisionInstances | undefined> {
    return this.ctx.provider.open(this.plan, this.hooks()).catch((err: unknown) => {
      this.log.error({ err }, 'could not open the revision in the instance provider');
      return undefined;
    });
  }

  update(plan: RevisionPlan): void {
    const wasServing = this.serving;
    this.plan = plan;
    this.runtime?.update(plan);
    if (this.runtime !== undefined && wasServing !== this.serving) this.decideAndAct(undefined, true);
  }

  observe(sample: LoadSample): void {
    const now = this.ctx.now();
    this.lastSample = { receivedAt: now, concurrency: sample.concurrency, windowMs: sample.windowMs };
    const point = { ts: sample.ts, concurrency: sample.concurrency, rps: sample.rps, windowMs: sample.windowMs };
    if (this.runtime !== undefined && this.closing === undefined) {
      this.decideAndAct(point, true);
    } else {
      this.decider = { ...this.decider, points: addPoint(this.decider.points, point, this.plan.scaling.stableWindow) };
    }
    this.checkDrains();
  }

  /** An activator holds requests for this revision: decide at once, counting them as concurrency. */
  poke(poke: ActivationPoke): void {
    if (poke.held === 0) this.held.delete(poke.activator);
    else this.held.set(poke.activator, { held: poke.held, at: this.ctx.now() });
    if (poke.held > 0 && this.runtime !== undefined && this.closing === undefined && this.serving) this.decideAndAct(undefined, true);
  }

  tick(): void {
    if (
      this.runtime !== undefined &&
      this.closing === undefined &&
      this.serving &&
      this.ctx.now() - this.lastDecisionAt >= idleDecisionMs
    ) {
      this.decideAndAct(undefined, false);
    }
    this.replaceUnhealthy();
    this.checkDrains();
  }

  onHealth(transition: HealthTransition): void {
    const instance = this.runtime
      ?.instances()
      .find((i) => i.id === transition.endpoint.id || (i.address === transition.endpoint.address && i.port === transition.endpoint.port));
    if (instance === undefined) return;
    if (transition.state !== 'unhealthy') {
      this.unhealthy.delete(instance.id);
      return;
    }
    if (!this.unhealthy.has(instance.id)) this.unhealthy.set(instance.id, { since: this.ctx.now(), reason: transition.reason });
    this.replaceUnhealthy();
  }

  /** Replaces the instances that stayed unhealthy through the grace period (and are not already draining). */
  private replaceUnhealthy(): void {
    if (this.closing !== undefined) return;
    const grace = this.plan.healthCheck.gracePeriod;
    const now = this.ctx.now();
    for (const [id, { since, reason }] of this.unhealthy) {
      if (now - since < grace) continue;
      this.unhealthy.delete(id);
      if (this.runtime?.instances().some((i) => i.id === id && i.state !== 'draining') !== true) continue;
      this.log.warn({ instance: id, reason, graceMs: grace }, 'replacing an instance that stayed unhealthy');
      this.ctx.metrics.unhealthyReplaced.inc();
      this.runtime.replace(id);
    }
  }

  /** Drains and stops every instance and publishes the empty set (the revision is gone or this replica stops). */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.term++;
    this.unhealthy.clear();
    // Instances this replica does not run right now (a takeover still adopting them, or handed
    // over on losing the lease) are stopped too, unless another replica leads: then they are its.
    const elsewhere = this.ctx.leaderElsewhere();
    let runtime = this.runtime ?? (await this.opening);
    if (runtime === undefined && this.handedOver && !elsewhere) runtime = await this.open();
    if (runtime !== undefined && this.runtime !== runtime && elsewhere) {
      runtime.release();
    } else if (runtime !== undefined) {
      this.runtime = runtime;
      await runtime.close();
      if (this.runtime === runtime) this.queueEndpoints();
      this.runtime = undefined;
    }
    const labels = { ...this.plan.ref };
    this.ctx.metrics.desiredInstances.remove(labels);
    this.ctx.metrics.readyInstances.remove(labels);
    this.ctx.metrics.panicking.remove(labels);
  }

  /** For the admin API. */
  describe() {
    return {
      ...this.plan.ref,
      trafficPercent: this.plan.trafficPercent,
      deploying: this.plan.deploying,
      acting: this.runtime !== undefined,
      instances: this.runtime?.instances() ?? [],
      lastDecision: this.lastDecision ?? null,
      draining: this.drains.size,
    };
  }

  private get serving(): boolean {
    return this.plan.trafficPercent > 0 || this.plan.deploying;
  }

  private heldNow(now: number): number {
    let total = 0;
    for (const [activator, entry] of this.held) {
      if (now - entry.at > pokeStaleMs) this.held.delete(activator);
      else total += entry.held;
    }
    return total;
  }

  private readyCount(): number {
    return this.runtime?.instances().filter((i) => i.state === 'ready').length ?? 0;
  }

  private decideAndAct(sample: Parameters<typeof decide>[2]['sample'], publishAlways: boolean): void {
    const runtime = this.runtime;
    if (runtime === undefined) return;
    const now = this.ctx.now();
    const ready = this.readyCount();
    let decision: Decision;
    if (this.serving) {
      const held = this.heldNow(now);
      const result = decide(this.plan.scaling, this.decider, { now, ready, held, ...(sample ? { sample } : {}) });
      this.decider = result.state;
      decision = result.decision;
    } else {
      if (sample !== undefined) {
        this.decider = { ...this.decider, points: addPoint(this.decider.points, sample, this.plan.scaling.stableWindow) };
      }
      decision = {
        current: ready,
        desired: 0,
        stableConcurrency: 0,
        panicConcurrency: 0,
        panic: false,
        targetPerInstance: this.plan.scaling.maxConcurrency * this.plan.scaling.targetUtilization,
        limitedBy: null,
        reason: 'the revision receives no traffic (0 % or not in the traffic split): drain to zero',
      };
      this.decider = initialDeciderState(0, now, this.decider.points);
    }
    const previous = this.lastDecision;
    this.lastDecision = decision;
    this.lastDecisionAt = now;
    runtime.scale(decision.desired);
    const labels = { ...this.plan.ref };
    this.ctx.metrics.desiredInstances.set(labels, decision.desired);
    this.ctx.metrics.panicking.set(labels, decision.panic ? 1 : 0);
    this.ctx.metrics.decisions.inc({ limited_by: decision.limitedBy ?? 'none' });
    const changed = previous === undefined || previous.desired !== decision.desired || previous.panic !== decision.panic;
    if (publishAlways || changed) {
      this.ctx.bus.decision({ schemaVersion: 1, ...this.plan.ref, ts: now, ...decision });
    }
    if (changed) this.log.info({ ...decision }, 'scaling decision');
  }

  private hooks(): RevisionHooks {
    return {
      // Not before `lead` has the provider's first full view: a set published during adoption would drop instances.
      changed: () => {
        if (this.runtime !== undefined) this.queueEndpoints();
      },
      event: (instance, event, detail) => this.instanceEvent(instance, event, detail),
      drained: (instance) => this.waitDrained(instance),
    };
  }

  private instanceEvent(instance: string, event: InstanceEventKind, detail: string): void {
    this.ctx.metrics.instanceEvents.inc({ event });
    const level = event === 'start_failed' || event === 'exited' ? 'warn' : 'info';
    this.log[level]({ instance, event, detail }, `instance ${event}`);
    if (!this.ctx.isLeader()) return;
    this.ctx.bus.instanceEvent({ schemaVersion: 1, ...this.plan.ref, instance, event, detail, ts: this.ctx.now() });
  }

  /** Publishes the full endpoint set once per burst of changes (leader only). */
  private queueEndpoints(): void {
    if (this.endpointsQueued) return;
    this.endpointsQueued = true;
    queueMicrotask(() => {
      this.endpointsQueued = false;
      const instances = this.runtime?.instances() ?? [];
      this.ctx.metrics.readyInstances.set({ ...this.plan.ref }, instances.filter((i) => i.state === 'ready').length);
      if (!this.ctx.isLeader()) return;
      this.ctx.bus.endpoints(
        this.plan.ref,
        instances.map((i) => ({ id: i.id, address: i.address, port: i.port, state: i.state, startedAt: i.startedAt })),
      );
    });
  }

  private waitDrained(instance: InstanceView): Promise<void> {
    return new Promise((resolve) => {
      this.drains.set(instance.id, { startedAt: this.ctx.now(), resolve });
    });
  }

  /**
   * A draining instance may stop once a load sample whose whole report window lies after the
   * drain began shows the revision's requests in flight fit on the instances still serving
   * (maxConcurrency each): Envoy stops sending new requests to a draining endpoint, so what
   * remains in flight on it is at most what the revision still reports. When no sample
   * arrives for two report intervals after the drain began, nothing is in flight anywhere.
   * The drain timeout bounds the wait; after losing the lease only the timeout applies, so
   * the new leader's instances can take over first.
   */
  private checkDrains(): void {
    if (this.drains.size === 0) return;
    const now = this.ctx.now();
    const leader = this.ctx.isLeader() && this.runtime !== undefined;
    const capacity = this.plan.scaling.maxConcurrency * this.readyCount();
    const sample = this.lastSample;
    for (const [id, drain] of this.drains) {
      const elapsed = now - drain.startedAt;
      let outcome: string | undefined;
      if (elapsed >= this.ctx.drainTimeoutMs) {
        outcome = leader ? 'timeout' : 'handover';
      } else if (leader) {
        const interval = sample?.windowMs ?? 1000;
        if (sample !== undefined && sample.receivedAt - sample.windowMs >= drain.startedAt) {
          if (sample.concurrency <= capacity) outcome = 'completed';
        } else if ((sample === undefined || sample.receivedAt < drain.startedAt) && elapsed >= 2 * interval) {
          outcome = 'idle';
        }
      }
      if (outcome === undefined) continue;
      this.drains.delete(id);
      this.ctx.metrics.drains.inc({ outcome });
      this.ctx.metrics.drainSeconds.observe(elapsed / 1000);
      this.log.info({ instance: id, outcome, elapsedMs: elapsed }, 'drain finished');
      drain.resolve();
    }
  }
}
