import { performance } from 'node:perf_hooks';

/**
 * Decides when streams send. A cache change marks streams dirty and schedules one flush on
 * setImmediate: a lone change goes out in the same turn of the event loop, while every change
 * made before the flush runs (a burst) goes out as one response per type. No fixed delay.
 *
 * The flush stops while more than `budgetBytes` are written but not yet taken by the
 * transport, and resumes as writes complete. That bounds memory when a thousand clients
 * reconnect at once and each needs the full config (a reconnect storm): they are served in
 * turn instead of all buffered at once.
 *
 * Work per new stream is bounded too, so a storm cannot starve the streams already connected
 * (istio #35263): a stream still catching up (its first full config) goes after every
 * connected stream's update, at most `newStreamsPerTurn` of them per turn of the event loop,
 * and only while the bytes in flight are under half the budget — the other half is kept for
 * updates to connected streams.
 *
 * A flush also yields (setImmediate) once it has worked `turnBudgetMs`: writing to five
 * thousand streams takes most of a second, and what a stream's call wrote leaves the process
 * only when the event loop comes round (grpc-js and Node's HTTP/2 send on a later turn). So
 * the first streams' bytes go out while the rest are still being written, and requests (ACKs)
 * are read in between. Connected streams are marked, and so served, before new ones.
 */
export interface Tickable {
  tick(): void;
  /** True while the stream has yet to receive the full config of a type it asked for. */
  readonly catchingUp?: boolean;
}

const newStreamsPerTurn = 16;
const turnBudgetMs = 10;

export class PushScheduler<S extends Tickable> {
  private readonly dirty = new Set<S>();
  private scheduled = false;
  private bytesInFlight = 0;

  constructor(
    private readonly budgetBytes: number,
    private readonly afterFlush: () => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
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
    const deadline = this.now() + turnBudgetMs;
    let more = false;
    for (const stream of this.dirty) {
      if (this.bytesInFlight >= this.budgetBytes) break;
      if (stream.catchingUp === true) continue;
      if (this.now() >= deadline) {
        more = true;
        break;
      }
      this.dirty.delete(stream);
      stream.tick();
    }
    let newStreams = 0;
    for (const stream of more ? [] : this.dirty) {
      if (this.bytesInFlight >= this.budgetBytes / 2) break;
      if (newStreams >= newStreamsPerTurn || this.now() >= deadline) {
        more = true;
        break;
      }
      this.dirty.delete(stream);
      stream.tick();
      newStreams++;
    }
    // The rest next turn, after whatever requests and changes arrived meanwhile (a full send
    // budget resumes from written() instead).
    if (more) this.schedule();
    this.afterFlush();
  }
}
