import {
  buckets,
  consumeStream,
  ensureStreams,
  openBucket,
  streams,
  subjectPattern,
  subscribe,
  type Logger,
  type NatsConnection,
  type Readiness,
  type Subscription,
  type ServiceRecord,
  type DeploymentRecord,
} from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { BusPublisher } from './bus.js';
import {
  revisionKey,
  revisionPlans,
  watchServices,
  type DeploymentChange,
  type RevisionPlan,
  type ServiceChange,
  type ServiceWatch,
} from './revision-plans.js';
import { LeaderLease } from './lease.js';
import { LoadGate } from './load-gate.js';
import { autoscalerMetrics, type AutoscalerMetrics } from './metrics.js';
import { notRunnableReason, type InstanceProvider } from './provider.js';
import { RevisionController, type RevisionContext } from './revision-controller.js';

/**
 * The autoscaler: follows the desired state, holds one controller per revision it can run,
 * routes load samples and health transitions to them, and lets them act only while this
 * replica holds the leader lease.
 */

export interface AutoscalerOptions {
  nc: NatsConnection;
  logger: Logger;
  registry: Registry;
  readiness: Readiness;
  provider: InstanceProvider;
  /** Unique per process (the lease holder). */
  holder: string;
  leaseTtlMs: number;
  drainTimeoutMs: number;
  maxClockSkewMs: number;
  /** JetStream replicas for the streams and buckets it creates (NATS_STREAM_REPLICAS). */
  streamReplicas?: number;
  now?: () => number;
  tickMs?: number;
}

export const leaseKey = 'autoscaler';

export class Autoscaler {
  private readonly controllers = new Map<string, RevisionController>();
  /** Controllers of removed revisions still draining: they keep getting ticks until closed. */
  private readonly closing = new Set<RevisionController>();
  /** Revisions the configured provider cannot run, with the reason reported for them. */
  private readonly notRunnable = new Map<string, { plan: RevisionPlan; reason: string }>();
  private readonly staticRevisions = new Set<string>();
  private readonly services = new Map<string, ServiceRecord>();
  private readonly deployments = new Map<string, DeploymentRecord>();
  private readonly gate: LoadGate;
  private readonly metrics: AutoscalerMetrics;
  private readonly now: () => number;
  private readonly loggedDrops = new Set<string>();
  private bus!: BusPublisher;
  private lease!: LeaderLease;
  private watch: ServiceWatch | undefined;
  private loadSub: Subscription | undefined;
  private pokeSub: Subscription | undefined;
  private healthConsumer: { stop: () => Promise<void> } | undefined;
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly options: AutoscalerOptions) {
    this.now = options.now ?? Date.now;
    this.gate = new LoadGate(options.maxClockSkewMs);
    this.metrics = autoscalerMetrics(options.registry);
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  /** Loads the whole desired state, then subscribes and joins the leader election. */
  async start(): Promise<void> {
    const { nc, logger, registry } = this.options;
    const stateLoaded = this.options.readiness.require('autoscaler-desired-state');
    const replicas = this.options.streamReplicas ?? 1;
    const { js, jsm } = await ensureStreams(nc, { replicas, logger });
    this.bus = new BusPublisher(js, jsm, logger, this.metrics, this.now, () => this.lease.isLeader);
    const [, leases] = await Promise.all([
      openBucket(nc, buckets.config, { replicas, logger }),
      openBucket(nc, buckets.leases, { replicas, logger }),
    ]);
    this.lease = new LeaderLease({
      kv: leases,
      key: leaseKey,
      holder: this.options.holder,
      ttlMs: this.options.leaseTtlMs,
      logger,
      now: this.now,
      onChange: (leader) => this.onLeadership(leader),
    });
    this.watch = await watchServices(
      nc,
      logger,
      (change) => this.applyService(change),
      () => this.metrics.invalidRecords.inc(),
      (change) => this.applyDeployment(change),
    );
    stateLoaded();
    logger.info({ revisions: this.controllers.size, notRunnable: this.notRunnable.size }, 'desired state loaded');
    const deps = { logger, registry };
    this.loadSub = subscribe(nc, 'load', subjectPattern('load'), deps, ({ payload }) => {
      const key = revisionKey(payload);
      const controller = this.controllers.get(key);
      if (controller === undefined) {
        this.metrics.loadSamples.inc({ result: 'unmanaged' });
        return;
      }
      const verdict = this.gate.admit(key, payload.ts, this.now());
      this.metrics.loadSamples.inc({ result: verdict });
      if (verdict !== 'accepted') {
        this.logDropOnce(`${key}:${verdict}`, { revision: key, ts: payload.ts, verdict }, 'dropped a load sample');
        return;
      }
      controller.observe(payload);
    });
    this.pokeSub = subscribe(nc, 'activate', subjectPattern('activate'), deps, ({ payload }) =>
      this.controllers.get(revisionKey(payload))?.poke(payload),
    );
    this.healthConsumer = await consumeStream(
      nc,
      'health',
      { stream: streams.health.name, pattern: subjectPattern('health'), replay: { from: 'new' } },
      deps,
      ({ payload }) => this.controllers.get(revisionKey(payload))?.onHealth(payload),
    );
    this.lease.start();
    this.ticker = setInterval(() => {
      for (const controller of this.controllers.values()) controller.tick();
      for (const controller of this.closing) controller.tick();
    }, this.options.tickMs ?? 1000);
  }

  /** Stops deciding; as leader, drains and stops every instance and publishes the final sets, then releases the lease. */
  async stop(): Promise<void> {
    await this.watch?.stop();
    await this.healthConsumer?.stop();
    // Load samples and ticks keep running meanwhile: they are what ends the drains.
    for (const controller of this.controllers.values()) this.retire(controller);
    this.controllers.clear();
    while (this.closing.size > 0) await Promise.all([...this.closing].map((c) => c.close()));
    this.loadSub?.unsubscribe();
    this.pokeSub?.unsubscribe();
    clearInterval(this.ticker);
    await this.bus.flush();
    await this.lease.stop();
    this.metrics.leader.set(0);
  }

  describe() {
    return {
      holder: this.lease.holder,
      leader: this.lease.isLeader,
      provider: this.options.provider.name,
      revisions: [...this.controllers.values()].map((c) => c.describe()),
      notRunnable: [...this.notRunnable.values()].map(({ plan, reason }) => ({ ...plan.ref, reason })),
      static: [...this.staticRevisions],
    };
  }

  private context(): RevisionContext {
    return {
      now: this.now,
      logger: this.options.logger,
      metrics: this.metrics,
      bus: this.bus,
      provider: this.options.provider,
      drainTimeoutMs: this.options.drainTimeoutMs,
      isLeader: () => this.lease.isLeader,
      leaderElsewhere: () => this.lease.leaderElsewhere,
    };
  }

  private applyDeployment(change: DeploymentChange): void {
    const key = `${change.tenant}/${change.service}`;
    if (change.record === null) this.deployments.delete(key);
    else this.deployments.set(key, change.record);
    const record = this.services.get(key);
    if (record !== undefined) this.applyService({ tenant: change.tenant, service: change.service, record });
  }

  private applyService(change: ServiceChange): void {
    const serviceKey = `${change.tenant}/${change.service}`;
    if (change.record === null) this.services.delete(serviceKey);
    else this.services.set(serviceKey, change.record);
    const plans = change.record === null ? [] : revisionPlans(change.record, this.deployments.get(serviceKey));
    const prefix = `${change.tenant}/${change.service}/`;
    const wanted = new Map(plans.map((plan) => [revisionKey(plan.ref), plan]));
    for (const [key, controller] of this.controllers) {
      if (!key.startsWith(prefix)) continue;
      const plan = wanted.get(key);
      if (plan === undefined || plan.source.kind === 'static' || notRunnableReason(this.options.provider, plan) !== undefined) {
        this.controllers.delete(key);
        this.gate.forget(key);
        this.retire(controller);
      }
    }
    for (const key of [...this.notRunnable.keys(), ...this.staticRevisions]) {
      if (key.startsWith(prefix) && !wanted.has(key)) {
        this.notRunnable.delete(key);
        this.staticRevisions.delete(key);
      }
    }
    for (const [key, plan] of wanted) {
      if (plan.source.kind === 'static') {
        this.staticRevisions.add(key);
        continue;
      }
      const reason = notRunnableReason(this.options.provider, plan);
      if (reason !== undefined) {
        const known = this.notRunnable.get(key);
        this.notRunnable.set(key, { plan, reason });
        if (known?.reason !== reason) this.reportNotRunnable(plan, reason);
        continue;
      }
      this.notRunnable.delete(key);
      const existing = this.controllers.get(key);
      if (existing !== undefined) {
        existing.update(plan);
        continue;
      }
      const controller = new RevisionController(this.context(), plan);
      this.controllers.set(key, controller);
      if (this.lease.isLeader) void controller.lead();
    }
    this.countRevisions();
  }

  private retire(controller: RevisionController): void {
    this.closing.add(controller);
    void controller.close().finally(() => this.closing.delete(controller));
  }

  private countRevisions(): void {
    const { revisions } = this.metrics;
    const notRunnable = [...this.notRunnable.values()];
    revisions.reset();
    revisions.set({ source: 'command', runnable: 'yes' }, this.controllers.size);
    revisions.set({ source: 'static', runnable: 'yes' }, this.staticRevisions.size);
    for (const source of ['command', 'image'] as const) {
      revisions.set({ source, runnable: 'no' }, notRunnable.filter((n) => n.plan.source.kind === source).length);
    }
  }

  private reportNotRunnable(plan: RevisionPlan, reason: string): void {
    this.metrics.instanceEvents.inc({ event: 'not_runnable' });
    this.options.logger.warn({ ...plan.ref, reason }, 'revision not runnable by the configured instance provider');
    if (!this.lease.isLeader) return;
    this.bus.instanceEvent({ schemaVersion: 1, ...plan.ref, instance: '', event: 'not_runnable', detail: reason, ts: this.now() });
  }

  private onLeadership(leader: boolean): void {
    this.metrics.leader.set(leader ? 1 : 0);
    this.metrics.leaseTransitions.inc({ transition: leader ? 'acquired' : 'lost' });
    for (const controller of this.controllers.values()) {
      if (leader) void controller.lead();
      else controller.follow();
    }
    if (!leader) return;
    for (const { plan, reason } of this.notRunnable.values()) this.reportNotRunnable(plan, reason);
    this.options.provider
      .stopUnwanted?.((ref) => this.controllers.has(revisionKey(ref)))
      .catch((err: unknown) => {
        this.options.logger.error({ err }, 'could not stop the instances left running for revisions no longer wanted');
      });
  }

  private logDropOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.loggedDrops.has(key)) return;
    this.loggedDrops.add(key);
    this.options.logger.warn(fields, `${message} (logged once per revision and reason; see switchyard_autoscaler_load_samples_total)`);
  }
}
