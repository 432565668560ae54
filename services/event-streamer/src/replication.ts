import type { Registry } from 'prom-client';
import {
  buckets,
  eventStreamerHeartbeat,
  followBucket,
  messageCounters,
  publish,
  subjectPattern,
  subscribe,
  type EventStreamerHeartbeat,
  type HealthTransition,
  type KV,
  type Logger,
  type NatsConnection,
  type StreamFollower,
  type Subscription,
} from '@switchyard/shared';
import type { CheckProtocol } from './assigner.js';
import type { EndpointResult, HealthCoordinator } from './coordinator.js';
import type { CheckerFleet, RoutedOutcome } from './hds.js';
import { checkerChanges, fleetView, type ConnectedEnvoy, type FleetView, type ReplicaHeartbeat } from './membership.js';
import type { EventStreamerMetrics } from './metrics.js';
import { parseJson } from './parse-json.js';

/**
 * The NATS side of several event-streamer replicas sharing the Envoy fleet (the rules are in
 * membership.ts):
 * - membership: every replica puts a heartbeat listing its HDS-connected Envoys into the
 *   `switchyard-event-streamers` bucket (at once when one joins or leaves, and every
 *   `heartbeatMs`), follows everyone's, and feeds the union to its coordinator, so all replicas
 *   compute the same assignment and each sends specifiers to the Envoys connected to it;
 * - votes: a result is aggregated by the one replica that ranks top for its endpoint; results
 *   for endpoints aggregated elsewhere go to `switchyard.hdsvotes.<replica>`. Only that replica
 *   publishes the endpoint's transitions, so a change is published once, not once per replica.
 *
 * A replica silent for `4 × heartbeatMs` (by the receiving replica's clock) is gone: its Envoys
 * leave the union (they reconnect to a live replica) and its endpoints' aggregation moves.
 */

export interface ReplicationOptions {
  nc: NatsConnection;
  /** The members bucket (`buckets.eventStreamers`). */
  members: KV;
  replica: string;
  heartbeatMs: number;
  coordinator: HealthCoordinator;
  metrics: EventStreamerMetrics;
  logger: Logger;
  registry: Registry;
  now: () => number;
  /** Assignments may have changed: send the new specifiers. */
  onChange: () => void;
  /** Transitions this replica aggregated from forwarded votes. */
  onTransitions: (transitions: HealthTransition[]) => void;
}

export const missedHeartbeats = 4;

export class Replication implements CheckerFleet {
  private readonly local = new Map<string, ConnectedEnvoy>();
  private readonly heartbeats = new Map<string, ReplicaHeartbeat>();
  private view: FleetView = { replicas: [], checkers: new Map() };
  private putting = false;
  private putAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private follower: StreamFollower | undefined;
  private votes: Subscription | undefined;

  constructor(private readonly options: ReplicationOptions) {}

  get replica(): string {
    return this.options.replica;
  }

  /** The live replicas, sorted. */
  get replicas(): readonly string[] {
    return this.view.replicas;
  }

  /** Starts heartbeating and following the others; resolves once every heartbeat in the bucket is applied. */
  async start(): Promise<void> {
    const { nc, logger, registry, replica, heartbeatMs } = this.options;
    const { dropped } = messageCounters(registry);
    this.beat();
    this.timer = setInterval(() => this.beat(), heartbeatMs);
    this.votes = subscribe(nc, 'hdsvotes', subjectPattern('hdsvotes', { token: replica }), { logger, registry }, (m) => {
      this.onVotes(m.payload.checker, m.payload.results);
    });
    this.follower = await followBucket(nc, buckets.eventStreamers, {}, { logger }, (change) => {
      if (change.key === replica) return;
      if (change.operation !== 'PUT') this.heartbeats.delete(change.key);
      else {
        const heartbeat = parseJson(change.value, (value) => eventStreamerHeartbeat.safeParse(value));
        if (heartbeat === undefined || heartbeat.replica !== change.key) {
          dropped.inc({ kind: 'event_streamer_heartbeat', reason: 'schema' });
          logger.warn({ key: change.key }, 'ignored an event-streamer heartbeat that fails its schema');
          return;
        }
        this.heartbeats.set(change.key, { replica: change.key, at: this.options.now(), envoys: heartbeat.envoys });
      }
      this.refresh();
    });
    await this.follower.caughtUp;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.votes?.unsubscribe();
    await this.follower?.stop();
    // Leaving at once: the others take over its Envoys' endpoints now, not after the timeout.
    await this.options.members.delete(this.options.replica).catch(() => undefined);
  }

  connectMany(checkers: readonly { id: string; protocols: readonly CheckProtocol[] }[], now: number): void {
    for (const { id, protocols } of checkers) this.local.set(id, { node: id, protocols, connectedAt: now });
    this.beat();
    // An Envoy that moved here may already be in the fleet (its old replica still lists it): its new stream still needs its checks.
    this.options.coordinator.resend(checkers.map((c) => c.id));
  }

  disconnect(checkers: readonly string[]): void {
    for (const id of checkers) this.local.delete(id);
    this.beat();
  }

  /** Aggregates the results this replica owns and forwards the rest, one message per aggregating replica. */
  route(checker: string, results: readonly EndpointResult[], now: number): { transitions: HealthTransition[]; outcomes: RoutedOutcome[] } {
    const { coordinator, replica } = this.options;
    const outcomes: RoutedOutcome[] = new Array<RoutedOutcome>(results.length);
    const here: EndpointResult[] = [];
    const hereAt: number[] = [];
    const elsewhere = new Map<string, EndpointResult[]>();
    results.forEach((result, i) => {
      const owner = coordinator.aggregatorOf(result) ?? replica;
      if (owner === replica) {
        here.push(result);
        hereAt.push(i);
        return;
      }
      outcomes[i] = 'forwarded';
      const list = elsewhere.get(owner);
      if (list === undefined) elsewhere.set(owner, [result]);
      else list.push(result);
    });
    for (const [owner, list] of elsewhere) this.forward(owner, checker, list, now);
    const local = coordinator.report(checker, here, now);
    local.outcomes.forEach((outcome, j) => (outcomes[hereAt[j] as number] = outcome));
    return { transitions: local.transitions, outcomes };
  }

  private forward(owner: string, checker: string, results: EndpointResult[], now: number): void {
    try {
      publish(this.options.nc, 'hdsvotes', { schemaVersion: 1, replica: owner, from: this.options.replica, checker, results, ts: now });
    } catch (err) {
      // The Envoy reports again next interval; a vote missing meanwhile only delays a verdict.
      this.options.logger.warn({ err, to: owner }, 'cannot forward HDS results');
    }
  }

  private onVotes(checker: string, results: readonly EndpointResult[]): void {
    const { transitions, outcomes } = this.options.coordinator.report(checker, results, this.options.now());
    const counts = new Map<string, number>();
    for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    for (const [outcome, count] of counts) this.options.metrics.results.inc({ outcome }, count);
    if (transitions.length > 0) this.options.onTransitions(transitions);
  }

  /** Applies this replica's own heartbeat at once and stores it (one put in flight; a change meanwhile is put after). */
  private beat(): void {
    const { replica, now } = this.options;
    const envoys = [...this.local.values()];
    this.heartbeats.set(replica, { replica, at: now(), envoys });
    this.refresh();
    if (this.putting) {
      this.putAgain = true;
      return;
    }
    this.putting = true;
    const heartbeat: EventStreamerHeartbeat = {
      schemaVersion: 1,
      replica,
      envoys: envoys.map((e) => ({ node: e.node, protocols: [...e.protocols], connectedAt: e.connectedAt })),
      ts: now(),
    };
    this.options.members
      .put(replica, JSON.stringify(heartbeat))
      .catch((err: unknown) => this.options.logger.warn({ err }, 'cannot store the event-streamer heartbeat; retrying next beat'))
      .finally(() => {
        this.putting = false;
        if (!this.putAgain) return;
        this.putAgain = false;
        this.beat();
      });
  }

  /** Recomputes the fleet and tells the coordinator what changed. */
  private refresh(): void {
    const { coordinator, replica, now, heartbeatMs, metrics } = this.options;
    const at = now();
    const next = fleetView([...this.heartbeats.values()], at, missedHeartbeats * heartbeatMs);
    const { add, remove } = checkerChanges(this.view, next);
    const replicasChanged = next.replicas.join(',') !== this.view.replicas.join(',');
    this.view = next;
    if (remove.length > 0) coordinator.disconnect(remove, at);
    if (add.length > 0) coordinator.connectMany(add, at);
    if (replicasChanged) {
      coordinator.setReplicas(next.replicas, replica, at);
      this.options.logger.info({ replicas: next.replicas }, 'event-streamer replicas changed');
    }
    metrics.replicas.set(next.replicas.length);
    metrics.fleetEnvoys.set(next.checkers.size);
    if (add.length > 0 || remove.length > 0 || replicasChanged) this.options.onChange();
  }
}
