import { clusterName, type EndpointSet, type HealthTransition, type ServiceRecord } from '@switchyard/shared';
import { Aggregator, type HealthState, type Vote } from './health-votes.js';
import { Assigner, type CheckProtocol } from './assigner.js';
import { Catalog, targetKey, type CatalogDiff, type CheckTarget } from './catalog.js';
import { aggregatorOf } from './membership.js';

/**
 * The health-checking core: the catalog says what to check, the assigner who checks it, the
 * aggregator what the results mean. The HDS and NATS adapters feed it; it never does I/O and
 * takes the time as an argument.
 */

/** One endpoint's status as an Envoy reported it (`envoy.config.core.v3.HealthStatus` name). */
export interface EndpointResult {
  cluster: string;
  address: string;
  port: number;
  status: string;
}

export type ResultOutcome =
  'accepted' | 'unknown_cluster' | 'unknown_endpoint' | 'not_assigned' | 'not_aggregated_here' | 'unknown_checker' | 'bad_status';

/** Envoy's HDS reports HEALTHY, UNHEALTHY or TIMEOUT; the rest carry no verdict. */
const votesByStatus: Record<string, Vote | 'abstain'> = {
  HEALTHY: 'healthy',
  DEGRADED: 'healthy',
  UNHEALTHY: 'unhealthy',
  TIMEOUT: 'unhealthy',
  DRAINING: 'abstain',
  UNKNOWN: 'abstain',
};

export interface CoordinatorOptions {
  checkersPerEndpoint: number;
  staleAfterMs: number;
}

export class HealthCoordinator {
  readonly catalog = new Catalog();
  readonly assigner: Assigner;
  readonly aggregator: Aggregator;
  /** States published before a restart, for endpoints not tracked yet. */
  private readonly recovered = new Map<string, HealthState>();
  private dirty = new Set<string>();
  /** With several replicas: the live ones and this one's id; each endpoint's votes are aggregated by one. */
  private replication: { replicas: readonly string[]; self: string } | undefined;

  constructor(options: CoordinatorOptions) {
    this.assigner = new Assigner(options.checkersPerEndpoint);
    this.aggregator = new Aggregator({ staleAfterMs: options.staleAfterMs });
  }

  /**
   * Remembers the last published state of an endpoint: replayed from the health stream at
   * start and, with several replicas, followed live for the endpoints other replicas aggregate.
   */
  recoverState(transition: Pick<HealthTransition, 'tenant' | 'service' | 'revision' | 'endpoint' | 'state'>): void {
    const key = targetKey(clusterName(transition), transition.endpoint.address, transition.endpoint.port);
    if (this.aggregator.stateOf(key) === undefined) this.recovered.set(key, transition.state);
    else this.aggregator.observe(key, transition.state);
  }

  /** The live replicas changed: endpoints are aggregated by their rendezvous-top replica. */
  setReplicas(replicas: readonly string[], self: string, now: number): void {
    this.replication = { replicas, self };
    for (const key of this.catalog.keys()) this.aggregator.setAggregatedHere(key, this.aggregatedHere(key), now);
  }

  /** The replica that aggregates the votes of the endpoint a result is about (undefined with one replica, or none live). */
  aggregatorOf(result: Pick<EndpointResult, 'cluster' | 'address' | 'port'>): string | undefined {
    if (this.replication === undefined) return undefined;
    return aggregatorOf(targetKey(result.cluster, result.address, result.port), this.replication.replicas);
  }

  applyService(record: ServiceRecord, now: number): void {
    this.applyDiff(this.catalog.setService(record), now);
  }

  deleteService(tenant: string, service: string, now: number): void {
    this.applyDiff(this.catalog.deleteService(tenant, service), now);
  }

  /** Returns false for a set older than the one already held. */
  applyEndpointSet(set: EndpointSet, now: number): boolean {
    const diff = this.catalog.setEndpointSet(set);
    if (diff === undefined) return false;
    this.applyDiff(diff, now);
    return true;
  }

  connect(checker: string, protocols: readonly CheckProtocol[], now: number): void {
    this.connectMany([{ id: checker, protocols }], now);
  }

  /** Adds several checkers at once: one pass over the endpoints instead of one per checker. */
  connectMany(checkers: readonly { id: string; protocols: readonly CheckProtocol[] }[], now: number): void {
    this.assigner.addCheckers(checkers);
    this.syncAssignments(now);
  }

  disconnect(checkers: readonly string[], now: number): void {
    this.assigner.removeCheckers(checkers);
    this.syncAssignments(now);
  }

  /** Ingests one Envoy report; returns the transitions it caused and what happened to each result. */
  report(checker: string, results: readonly EndpointResult[], now: number): { transitions: HealthTransition[]; outcomes: ResultOutcome[] } {
    const transitions: HealthTransition[] = [];
    const outcomes: ResultOutcome[] = [];
    const known = this.assigner.hasChecker(checker);
    for (const result of results) {
      const vote = votesByStatus[result.status];
      if (!known) outcomes.push('unknown_checker');
      else if (vote === undefined) outcomes.push('bad_status');
      else if (!this.catalog.hasCluster(result.cluster)) outcomes.push('unknown_cluster');
      else {
        const outcome = this.aggregator.report(targetKey(result.cluster, result.address, result.port), checker, vote, now);
        outcomes.push(outcome.outcome);
        if (outcome.transition !== undefined) transitions.push(outcome.transition);
      }
    }
    return { transitions, outcomes };
  }

  tick(now: number): HealthTransition[] {
    return this.aggregator.tick(now);
  }

  /** What a checker must check now. */
  targetsOf(checker: string): CheckTarget[] {
    const targets: CheckTarget[] = [];
    for (const key of this.assigner.endpointsOf(checker)) {
      const target = this.catalog.get(key);
      if (target !== undefined) targets.push(target);
    }
    return targets;
  }

  /** Marks checkers as needing their specifier again (a new stream of an Envoy the fleet already counts). */
  resend(checkers: Iterable<string>): void {
    for (const checker of checkers) if (this.assigner.hasChecker(checker)) this.dirty.add(checker);
  }

  /** Checkers whose assignment changed since the last call: they need a new specifier. */
  takeDirtyCheckers(): Set<string> {
    const dirty = this.dirty;
    this.dirty = new Set();
    return dirty;
  }

  private applyDiff(diff: CatalogDiff, now: number): void {
    for (const key of diff.removed) {
      this.assigner.removeEndpoint(key);
      this.aggregator.untrack(key);
    }
    for (const target of diff.upserted) {
      this.assigner.setEndpoint(target.key, target.check.protocol);
      const startedAt = target.startedAt ?? this.aggregator.startedAtOf(target.key) ?? now;
      this.aggregator.track(
        {
          key: target.key,
          ref: target.ref,
          address: target.address,
          port: target.port,
          ...(target.id === undefined ? {} : { id: target.id }),
          startedAt,
          gracePeriodMs: target.check.gracePeriodMs,
        },
        now,
        this.recovered.get(target.key),
      );
      this.recovered.delete(target.key);
      this.aggregator.setAggregatedHere(target.key, this.aggregatedHere(target.key), now);
    }
    this.syncAssignments(now);
  }

  private aggregatedHere(key: string): boolean {
    if (this.replication === undefined) return true;
    return aggregatorOf(key, this.replication.replicas) === this.replication.self;
  }

  private syncAssignments(now: number): void {
    const changes = this.assigner.takeChanges();
    for (const key of changes.endpoints) this.aggregator.setCheckers(key, this.assigner.checkersOf(key), now);
    for (const checker of changes.checkers) this.dirty.add(checker);
  }
}
