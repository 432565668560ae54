import { z } from 'zod';
import type { KV, Logger } from '@switchyard/shared';

/**
 * A leader lease in a JetStream KV bucket, for nats-server 2.9 (no per-message TTL): the
 * value carries its holder and the holder's clock at the last renewal, and every write is a
 * compare-and-set on the key's revision. The holder renews every `ttlMs / 5`; another
 * replica takes the lease once the value is older than `ttlMs` by its own clock (replica
 * clocks are assumed to agree to well within `ttlMs`). A holder that cannot renew for
 * 80 % of `ttlMs` stops acting before anyone else may start, and a holder whose
 * compare-and-set fails has been replaced. Stopping releases the lease at once.
 */

const leaseValue = z.object({ holder: z.string(), renewedAt: z.number(), ttlMs: z.number().positive() });
type LeaseValue = z.infer<typeof leaseValue>;

export interface LeaseOptions {
  kv: KV;
  key: string;
  /** Unique per process: two processes must never share it. */
  holder: string;
  ttlMs: number;
  logger: Logger;
  now?: () => number;
  /** Called on every transition, with true when this replica became the leader. */
  onChange: (leader: boolean) => void;
}

const wrongLastSequence = new Set([10071, 10164]);

function isCompareAndSetConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && wrongLastSequence.has((err as { code: number }).code);
}

export class LeaderLease {
  private leader = false;
  private revision = 0;
  private renewedAt = 0;
  /** When this replica last read a fresh lease of another holder (by its own clock). */
  private otherSeenAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: LeaseOptions) {
    this.now = options.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  get holder(): string {
    return this.options.holder;
  }

  /** Whether another replica held a live lease at this replica's last look (within one TTL). */
  get leaderElsewhere(): boolean {
    return !this.leader && this.now() - this.otherSeenAt <= this.options.ttlMs;
  }

  start(): void {
    const every = Math.max(50, Math.floor(this.options.ttlMs / 5));
    const loop = () => {
      if (this.stopped) return;
      this.running ??= this.tick().finally(() => {
        this.running = undefined;
      });
      this.timer = setTimeout(loop, every);
    };
    loop();
  }

  /** Stops taking part and releases the lease if held. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (!this.leader) return;
    try {
      await this.options.kv.delete(this.options.key, { previousSeq: this.revision });
    } catch (err) {
      this.options.logger.warn({ err }, 'could not release the leader lease; it expires on its own');
    }
    this.transition(false, 'released');
  }

  private encode(now: number): string {
    const value: LeaseValue = { holder: this.options.holder, renewedAt: now, ttlMs: this.options.ttlMs };
    return JSON.stringify(value);
  }

  private async tick(): Promise<void> {
    try {
      if (this.leader) await this.renew();
      else await this.tryAcquire();
    } catch (err) {
      this.options.logger.debug({ err }, 'leader lease round failed');
    }
  }

  private async renew(): Promise<void> {
    const { kv, key, ttlMs } = this.options;
    const now = this.now();
    try {
      this.revision = await kv.update(key, this.encode(now), this.revision, Math.max(100, Math.floor(ttlMs / 5)));
      this.renewedAt = now;
      return;
    } catch (err) {
      if (isCompareAndSetConflict(err)) {
        // Our previous renewal may have landed without its answer reaching us.
        const entry = await kv.get(key);
        const current = entry?.operation === 'PUT' ? leaseValue.safeParse(safeJson(entry.string())) : undefined;
        if (entry !== null && current?.success === true && current.data.holder === this.options.holder) {
          this.revision = entry.revision;
          return;
        }
        this.transition(false, 'taken over by another replica');
        return;
      }
      if (this.now() - this.renewedAt >= 0.8 * ttlMs) this.transition(false, 'could not renew in time');
      throw err;
    }
  }

  private async tryAcquire(): Promise<void> {
    const { kv, key } = this.options;
    const now = this.now();
    const entry = await kv.get(key);
    try {
      if (entry === null || entry.operation !== 'PUT') {
        this.revision = await kv.create(key, this.encode(now));
      } else {
        const current = leaseValue.safeParse(safeJson(entry.string()));
        if (current.success && now - current.data.renewedAt <= current.data.ttlMs) {
          if (current.data.holder !== this.options.holder) this.otherSeenAt = now;
          return;
        }
        this.revision = await kv.update(key, this.encode(now), entry.revision);
      }
    } catch (err) {
      if (isCompareAndSetConflict(err)) return;
      throw err;
    }
    this.renewedAt = now;
    this.transition(true, entry?.operation === 'PUT' ? 'took over an expired lease' : 'acquired a free lease');
  }

  private transition(leader: boolean, why: string): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.options.logger.info({ holder: this.options.holder, leader, why }, leader ? 'became the leader' : 'no longer the leader');
    this.options.onChange(leader);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
