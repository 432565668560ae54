import type { EnvoyEvent, Logger } from '@switchyard/shared';
import type { EventStreamerMetrics } from './metrics.js';

/**
 * Publishes converted Envoy events (from EventReportingService or the log tailer) and counts
 * what it drops. Events are informational: at most `maxInFlight` publishes wait for their
 * ack; beyond that, and when a publish fails, the event is counted and dropped rather than
 * queued without bound.
 */
export class EnvoyEventSink {
  private inFlight = 0;
  private publishFailing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly deps: {
      publish: (event: EnvoyEvent) => Promise<void>;
      metrics: EventStreamerMetrics;
      logger: Logger;
      maxInFlight?: number;
    },
  ) {}

  /** Counts an event (or a log line, source `log_file`: its kind is unknown when unreadable) that could not be used. */
  drop(source: EnvoyEvent['source'] | 'log_file', reason: string): void {
    this.deps.metrics.envoyEventsDropped.inc({ source, reason });
  }

  /** Publishes an event; returns false if it had to be dropped because too many wait for their ack. */
  publish(event: EnvoyEvent): boolean {
    const { metrics } = this.deps;
    const { source } = event;
    if (this.inFlight >= (this.deps.maxInFlight ?? 1000)) {
      this.drop(source, 'backpressure');
      return false;
    }
    this.inFlight++;
    this.deps.publish(event).then(
      () => {
        this.publishFailing = false;
        metrics.envoyEvents.inc({ source, type: event.type });
        this.settle();
      },
      (err: unknown) => {
        metrics.publishFailures.inc({ kind: 'envoy' });
        this.drop(source, 'publish_failed');
        if (!this.publishFailing) this.deps.logger.warn({ err }, 'publishing Envoy events fails; dropping them until it works again');
        this.publishFailing = true;
        this.settle();
      },
    );
    return true;
  }

  /** Resolves once every accepted event is acknowledged or failed. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(): void {
    this.inFlight--;
    if (this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
