import { performance } from 'node:perf_hooks';
import type { HealthTransition, Logger } from '@switchyard/shared';
import type { EventStreamerMetrics } from './metrics.js';

export interface TransitionPublisherDeps {
  /** Publishes one transition durably (JetStream) and resolves on the stream's ack. */
  publish: (transition: HealthTransition, msgId: string) => Promise<void>;
  metrics: EventStreamerMetrics;
  logger: Logger;
  maxInFlight?: number;
  retryDelayMs?: number;
  /** Called after each acknowledged publish with its latency since submit. */
  onPublished?: (transition: HealthTransition, latencyMs: number) => void;
}

/**
 * Publishes health transitions to JetStream, many at a time but never two of one endpoint at
 * once, so each endpoint's transitions are stored in order. While one is in flight or failing,
 * later transitions of the same endpoint are merged into one (first previous state, last new
 * state; dropped if they cancel out): memory stays bounded by the number of endpoints even
 * when NATS is down, and consumers never see a transition from a state they were not told of.
 */
export class TransitionPublisher {
  private readonly pending = new Map<string, { transition: HealthTransition; submittedAt: number }>();
  private readonly inFlight = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly deps: TransitionPublisherDeps) {}

  get backlog(): number {
    return this.pending.size + this.inFlight.size;
  }

  submit(transition: HealthTransition): void {
    this.enqueue(endpointKey(transition), { transition, submittedAt: performance.now() });
    this.pump();
  }

  /** Resolves once everything submitted so far has been acknowledged. */
  idle(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private enqueue(key: string, item: { transition: HealthTransition; submittedAt: number }): void {
    const queued = this.pending.get(key);
    if (queued === undefined) {
      this.pending.set(key, item);
      return;
    }
    const [older, newer] = queued.submittedAt <= item.submittedAt ? [queued, item] : [item, queued];
    const merged = { ...newer.transition, previous: older.transition.previous };
    if (merged.previous === merged.state) this.pending.delete(key);
    else this.pending.set(key, { transition: merged, submittedAt: older.submittedAt });
  }

  private pump(): void {
    if (this.stopped) return;
    const max = this.deps.maxInFlight ?? 256;
    for (const [key, item] of this.pending) {
      if (this.inFlight.size >= max) break;
      if (this.inFlight.has(key)) continue;
      this.pending.delete(key);
      this.send(key, item);
    }
    if (this.backlog === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private send(key: string, item: { transition: HealthTransition; submittedAt: number }): void {
    const { transition } = item;
    this.inFlight.add(key);
    this.deps.publish(transition, `${key}|${transition.ts}|${transition.state}`).then(
      () => {
        const latencyMs = performance.now() - item.submittedAt;
        this.deps.metrics.transitions.inc({ state: transition.state });
        this.deps.metrics.transitionPublishSeconds.observe(latencyMs / 1000);
        this.deps.onPublished?.(transition, latencyMs);
        this.settle(key);
      },
      (err: unknown) => {
        this.deps.metrics.publishFailures.inc({ kind: 'health' });
        this.deps.logger.warn({ err, endpoint: key }, 'health transition publish failed; will retry');
        this.enqueue(key, item);
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, this.deps.retryDelayMs ?? 1000);
        this.settle(key);
      },
    );
  }

  private settle(key: string): void {
    this.inFlight.delete(key);
    // After a failure, wait for the retry timer instead of hammering a broken connection.
    if (this.retryTimer === undefined) this.pump();
  }
}

function endpointKey(t: HealthTransition): string {
  return `${t.tenant}/${t.service}/${t.revision}/${t.endpoint.address}/${t.endpoint.port}`;
}
