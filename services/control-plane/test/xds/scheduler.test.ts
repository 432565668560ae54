import { describe, expect, it } from 'vitest';
import { PushScheduler } from '../../src/xds/scheduler.js';

/** Streams that "write" a fixed number of bytes per tick, accounted on the scheduler. */
function streams(scheduler: () => PushScheduler<{ tick(): void }>, sizes: number[]) {
  const ticked: number[] = [];
  const list = sizes.map((size, i) => ({
    tick: () => {
      ticked.push(i);
      scheduler().writing(size);
    },
  }));
  return { list, ticked };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('push scheduling', () => {
  it('runs every stream marked in one turn once, on the next turn of the event loop', async () => {
    const scheduler = new PushScheduler<{ tick(): void }>(1_000_000);
    const { list, ticked } = streams(() => scheduler, [10, 10]);
    scheduler.markDirty(list[0]!);
    scheduler.markDirty(list[1]!);
    scheduler.markDirty(list[0]!);
    expect(ticked).toEqual([]);
    await turn();
    expect(ticked).toEqual([0, 1]);
  });

  it('stops at the send budget and resumes as writes complete', async () => {
    const scheduler = new PushScheduler<{ tick(): void }>(100);
    const { list, ticked } = streams(() => scheduler, [60, 60, 60]);
    for (const s of list) scheduler.markDirty(s);
    await turn();
    expect(ticked).toEqual([0, 1]);
    expect(scheduler.queued).toBe(1);
    // Still at the budget: nothing moves until a write completes.
    await turn();
    expect(ticked).toEqual([0, 1]);
    scheduler.written(60);
    await turn();
    expect(ticked).toEqual([0, 1, 2]);
    expect(scheduler.inFlight).toBe(120);
  });

  it('forgets a stream that went away', async () => {
    const scheduler = new PushScheduler<{ tick(): void }>(100);
    const { list, ticked } = streams(() => scheduler, [1]);
    scheduler.markDirty(list[0]!);
    scheduler.forget(list[0]!);
    await turn();
    expect(ticked).toEqual([]);
  });
});
