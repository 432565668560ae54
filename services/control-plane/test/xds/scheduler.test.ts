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

  it('serves connected streams before new ones, new ones a bounded number per turn and within half the budget', async () => {
    const scheduler = new PushScheduler<{ tick(): void; catchingUp: boolean }>(1000);
    const ticked: string[] = [];
    const stream = (name: string, catchingUp: boolean, size: number) => ({
      catchingUp,
      tick: () => {
        ticked.push(name);
        scheduler.writing(size);
      },
    });
    const fresh = Array.from({ length: 40 }, (_, i) => stream(`new${i}`, true, 1));
    for (const s of fresh) scheduler.markDirty(s);
    scheduler.markDirty(stream('connected', false, 1));
    await turn();
    expect(ticked[0]).toBe('connected');
    expect(ticked).toHaveLength(17);
    await turn();
    expect(ticked).toHaveLength(33);
    // Half the budget in flight: new streams wait, a connected stream's update still goes.
    scheduler.writing(500);
    scheduler.markDirty(stream('update', false, 1));
    await turn();
    expect(ticked.slice(33)).toEqual(['update']);
    scheduler.written(500);
    await turn();
    expect(ticked).toHaveLength(42);
  });

  it('yields once a turn has worked its time budget, connected streams first, and goes on next turn', async () => {
    let clock = 0;
    const scheduler = new PushScheduler<{ tick(): void; catchingUp: boolean }>(1_000_000, undefined, () => clock);
    const ticked: string[] = [];
    // Each write takes 4 ms of the turn's 10.
    const stream = (name: string, catchingUp: boolean) => ({
      catchingUp,
      tick: () => {
        ticked.push(name);
        clock += 4;
      },
    });
    scheduler.markDirty(stream('new', true));
    for (const name of ['a', 'b', 'c', 'd']) scheduler.markDirty(stream(name, false));
    await turn();
    expect(ticked).toEqual(['a', 'b', 'c']);
    await turn();
    expect(ticked).toEqual(['a', 'b', 'c', 'd', 'new']);
    await turn();
    expect(scheduler.queued).toBe(0);
  });
});
