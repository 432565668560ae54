/**
 * Decides when streams send. A cache change marks streams dirty and schedules one flush on
 * setImmediate: a lone change goes out in the same turn of the event loop, while every change
 * made before the flush runs (a burst) goes out as one response per type. No fixed delay.
 *
 * The flush stops while more than `budgetBytes` are written but not yet taken by the
 * transport, and resumes as writes complete. That bounds memory when a thousand clients
 * reconnect at once and each needs the full config (a reconnect storm): they are served in
 * turn instead of all buffered at once.
 */
export interface Tickable {
  tick(): void;
}

export class PushScheduler<S extends Tickable> {
  private readonly dirty = new Set<S>();
  private scheduled = false;
  private bytesInFlight = 0;

  constructor(
    private readonly budgetBytes: number,
    private readonly afterFlush: () => void = () => undefined,
  ) {}

  markDirty(stream: S): void {
    this.dirty.add(stream);
    this.schedule();
  }

  forget(stream: S): void {
    this.dirty.delete(stream);
  }

  /** Streams waiting for their turn. */
  get queued(): number {
    return this.dirty.size;
  }

  get inFlight(): number {
    return this.bytesInFlight;
  }

  /** Accounts bytes handed to the transport; call `written` when the write completes. */
  writing(bytes: number): void {
    this.bytesInFlight += bytes;
  }

  written(bytes: number): void {
    this.bytesInFlight -= bytes;
    if (this.dirty.size > 0 && this.bytesInFlight < this.budgetBytes) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    for (const stream of this.dirty) {
      if (this.bytesInFlight >= this.budgetBytes) break;
      this.dirty.delete(stream);
      stream.tick();
    }
    this.afterFlush();
  }
}
