import type { Logger } from '@switchyard/shared';
import type { Source } from './reports.js';
import type { SinkMetrics } from './sink-metrics.js';

export interface StreamLimits {
  maxMessageBytes: number;
  maxMessagesPerSecond: number;
}

/**
 * Per-stream protection against bad input, applied before a message is decoded: oversized
 * messages and floods (more messages than a token bucket of maxMessagesPerSecond allows)
 * are counted and dropped. Each reason is logged once per stream, so a bad client cannot
 * flood the logs either.
 */
export class StreamGuard {
  private tokens: number;
  private refilledAt: number;
  private readonly burst: number;
  private readonly logged = new Set<string>();

  constructor(
    private readonly source: Source,
    private readonly limits: StreamLimits,
    private readonly metrics: SinkMetrics,
    readonly logger: Logger,
    now: number,
  ) {
    this.burst = Math.max(2, 2 * limits.maxMessagesPerSecond);
    this.tokens = this.burst;
    this.refilledAt = now;
  }

  /** Counts a received message; false when it must be dropped unread. */
  admit(bytes: Uint8Array, now: number): boolean {
    this.metrics.messages.inc({ source: this.source });
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.limits.maxMessagesPerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.reject(
        'rate_limited',
        { limitPerSecond: this.limits.maxMessagesPerSecond },
        'stream sends faster than allowed; dropping messages',
      );
      return false;
    }
    this.tokens -= 1;
    if (bytes.byteLength > this.limits.maxMessageBytes) {
      this.reject(
        'oversized',
        { bytes: bytes.byteLength, limit: this.limits.maxMessageBytes },
        'message larger than STATS_MAX_MESSAGE_BYTES; dropped unread (limit the stats Envoy sends with stats_matcher, or raise the limit)',
      );
      return false;
    }
    return true;
  }

  /** Counts a refused message and logs the reason the first time it happens on this stream. */
  reject(reason: string, details: Record<string, unknown>, message: string): void {
    this.metrics.rejected.inc({ source: this.source, reason });
    this.warnOnce(reason, details, message);
  }

  warnOnce(reason: string, details: Record<string, unknown>, message: string): void {
    if (this.logged.has(reason)) return;
    this.logged.add(reason);
    this.logger.warn({ reason, ...details }, `${message} (logged once per stream)`);
  }
}
