import { publish, type Logger, type NatsConnection, type RevisionRef } from '@switchyard/shared';
import type { ActivatorMetrics } from './metrics.js';

/**
 * Tells the autoscaler how many requests this replica holds per revision
 * (`switchyard.activate.<tenant>.<service>.<revision>`): at once when the count changes (a
 * burst's changes within one event-loop turn become one poke) and every `heartbeatMs` while
 * any are held, so the autoscaler can forget the count of a replica that went away.
 */
export class Poker {
  private readonly dirty = new Map<string, { ref: RevisionRef; held: number }>();
  private scheduled = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly activator: string,
    private readonly metrics: ActivatorMetrics,
    private readonly logger: Logger,
    currentlyHeld: () => { ref: RevisionRef; held: number }[],
    private readonly coalesceMs: number,
    heartbeatMs = 1000,
  ) {
    this.heartbeat = setInterval(() => currentlyHeld().forEach(({ ref, held }) => this.send(ref, held)), heartbeatMs);
    this.heartbeat.unref();
  }

  heldChanged(ref: RevisionRef, held: number): void {
    this.metrics.held.set({ ...ref }, held);
    this.dirty.set(`${ref.tenant}/${ref.service}/${ref.revision}`, { ref, held });
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      this.scheduled = false;
      for (const { ref: r, held: h } of this.dirty.values()) this.send(r, h);
      this.dirty.clear();
    };
    // setImmediate runs right after this turn's I/O; a 0 ms timer would wait for the next timers phase (1 ms at least).
    if (this.coalesceMs > 0) setTimeout(flush, this.coalesceMs).unref();
    else setImmediate(flush);
  }

  stop(): void {
    clearInterval(this.heartbeat);
  }

  private send(ref: RevisionRef, held: number): void {
    try {
      publish(this.nc, 'activate', { schemaVersion: 1, ...ref, activator: this.activator, held, ts: Date.now() });
      this.metrics.pokes.inc();
    } catch (err) {
      this.logger.warn({ err, ...ref }, 'cannot publish an activation poke');
    }
  }
}
