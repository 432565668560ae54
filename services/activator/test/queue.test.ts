import { describe, expect, it } from 'vitest';
import { abandon, admit, emptyQueue, expire, nextDeadline, setReady, type QueueLimits, type RevisionQueue } from '../src/queue.js';

const limits: QueueLimits = { maxHeld: 2, defaultTimeoutMs: 120_000, retryAfterSeconds: 1 };

function held(...requests: [id: number, arrivedAt: number, deadline: number][]): RevisionQueue {
  return { ready: false, held: requests.map(([id, arrivedAt, deadline]) => ({ id, arrivedAt, deadline })) };
}

describe('admit', () => {
  const cases: {
    label: string;
    queue: RevisionQueue;
    timeoutMs: number | undefined;
    want: string;
    deadline?: number;
    heldAfter: number;
  }[] = [
    { label: 'ready revision: forward at once', queue: { ready: true, held: [] }, timeoutMs: 5000, want: 'forward', heldAfter: 0 },
    {
      label: 'no ready endpoint: hold until the route timeout',
      queue: emptyQueue,
      timeoutMs: 5000,
      want: 'hold',
      deadline: 1005000,
      heldAfter: 1,
    },
    { label: 'no route timeout: the default', queue: emptyQueue, timeoutMs: undefined, want: 'hold', deadline: 1120000, heldAfter: 1 },
    { label: 'route timeout 0 (disabled): the default', queue: emptyQueue, timeoutMs: 0, want: 'hold', deadline: 1120000, heldAfter: 1 },
    { label: 'one below the bound: hold', queue: held([1, 0, 9]), timeoutMs: 5000, want: 'hold', deadline: 1005000, heldAfter: 2 },
    { label: 'at the bound: reject', queue: held([1, 0, 9], [2, 0, 9]), timeoutMs: 5000, want: 'reject', heldAfter: 2 },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const { queue, admission } = admit(c.queue, { id: 7, now: 1_000_000, timeoutMs: c.timeoutMs }, limits);
      expect(admission.verdict).toBe(c.want);
      expect(queue.held).toHaveLength(c.heldAfter);
      if (admission.verdict === 'hold') expect(admission.request).toEqual({ id: 7, arrivedAt: 1_000_000, deadline: c.deadline });
      if (admission.verdict === 'reject') {
        expect(admission.retryAfterSeconds).toBe(1);
        expect(admission.reason).toMatch(/holds 2 requests \(the bound is 2\)/);
      }
    });
  }
});

describe('setReady', () => {
  const cases: { label: string; queue: RevisionQueue; ready: boolean; release: number[]; heldAfter: number[] }[] = [
    {
      label: 'ready: releases every held request, oldest first',
      queue: held([1, 0, 9], [2, 1, 9]),
      ready: true,
      release: [1, 2],
      heldAfter: [],
    },
    { label: 'not ready: keeps holding', queue: held([1, 0, 9]), ready: false, release: [], heldAfter: [1] },
    { label: 'ready with nothing held', queue: emptyQueue, ready: true, release: [], heldAfter: [] },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const { queue, release } = setReady(c.queue, c.ready);
      expect(release.map((r) => r.id)).toEqual(c.release);
      expect(queue.held.map((r) => r.id)).toEqual(c.heldAfter);
      expect(queue.ready).toBe(c.ready);
    });
  }

  it('a revision that lost its endpoints holds again', () => {
    const { queue } = setReady({ ready: true, held: [] }, false);
    expect(admit(queue, { id: 1, now: 0, timeoutMs: 10 }, limits).admission.verdict).toBe('hold');
  });
});

describe('expire', () => {
  const cases: { label: string; queue: RevisionQueue; now: number; expired: number[]; heldAfter: number[] }[] = [
    { label: 'before any deadline: nothing', queue: held([1, 0, 100], [2, 0, 200]), now: 99, expired: [], heldAfter: [1, 2] },
    { label: 'at a deadline: that one', queue: held([1, 0, 100], [2, 0, 200]), now: 100, expired: [1], heldAfter: [2] },
    { label: 'deadlines out of arrival order', queue: held([1, 0, 300], [2, 5, 100]), now: 150, expired: [2], heldAfter: [1] },
    { label: 'past every deadline', queue: held([1, 0, 100], [2, 0, 200]), now: 500, expired: [1, 2], heldAfter: [] },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const { queue, expired } = expire(c.queue, c.now);
      expect(expired.map((r) => r.id)).toEqual(c.expired);
      expect(queue.held.map((r) => r.id)).toEqual(c.heldAfter);
    });
  }
});

describe('nextDeadline and abandon', () => {
  it('the earliest deadline, not the oldest arrival', () => {
    expect(nextDeadline(held([1, 0, 300], [2, 5, 100]))).toBe(100);
    expect(nextDeadline(emptyQueue)).toBeUndefined();
  });

  it('a client that went away frees its place under the bound', () => {
    const full = held([1, 0, 9], [2, 0, 9]);
    expect(admit(abandon(full, 1), { id: 3, now: 0, timeoutMs: 10 }, limits).admission.verdict).toBe('hold');
  });
});
