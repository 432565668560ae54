import { describe, expect, it } from 'vitest';
import {
  abandon,
  admit,
  emptyQueue,
  expire,
  finish,
  nextDeadline,
  setEndpoints,
  type QueueLimits,
  type RevisionQueue,
} from '../src/queue.js';

const limits: QueueLimits = { maxHeld: 2, defaultTimeoutMs: 120_000, retryAfterSeconds: 1 };

function held(...requests: [id: number, arrivedAt: number, deadline: number][]): RevisionQueue {
  return { slots: [], held: requests.map(([id, arrivedAt, deadline]) => ({ id, arrivedAt, deadline })) };
}

/** Endpoints `a`, `b`, … with that many requests in flight each. */
function slots(...inFlight: number[]): RevisionQueue['slots'] {
  return inFlight.map((n, i) => ({ key: String.fromCharCode(97 + i), inFlight: n }));
}

/** Each instance takes 2 requests at once in these tables. */
const maxConcurrency = 2;

describe('admit', () => {
  const cases: {
    label: string;
    queue: RevisionQueue;
    timeoutMs: number | undefined;
    want: string;
    key?: string;
    deadline?: number;
    heldAfter: number;
    slotsAfter?: number[];
  }[] = [
    {
      label: 'a ready endpoint with room: forward at once',
      queue: { slots: slots(0), held: [] },
      timeoutMs: 5000,
      want: 'forward',
      key: 'a',
      heldAfter: 0,
      slotsAfter: [1],
    },
    {
      label: 'to the endpoint with the fewest in flight',
      queue: { slots: slots(1, 0), held: [] },
      timeoutMs: 5000,
      want: 'forward',
      key: 'b',
      heldAfter: 0,
      slotsAfter: [1, 1],
    },
    {
      label: 'every endpoint at maxConcurrency: hold',
      queue: { slots: slots(2, 2), held: [] },
      timeoutMs: 5000,
      want: 'hold',
      deadline: 1005000,
      heldAfter: 1,
      slotsAfter: [2, 2],
    },
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
      const { queue, admission } = admit(c.queue, { id: 7, now: 1_000_000, timeoutMs: c.timeoutMs }, limits, maxConcurrency);
      expect(admission.verdict).toBe(c.want);
      expect(queue.held).toHaveLength(c.heldAfter);
      if (c.slotsAfter !== undefined) expect(queue.slots.map((s) => s.inFlight)).toEqual(c.slotsAfter);
      if (admission.verdict === 'forward') expect(admission.key).toBe(c.key);
      if (admission.verdict === 'hold') expect(admission.request).toEqual({ id: 7, arrivedAt: 1_000_000, deadline: c.deadline });
      if (admission.verdict === 'reject') {
        expect(admission.retryAfterSeconds).toBe(1);
        expect(admission.reason).toMatch(/no ready instance and the activator already holds 2 requests \(the bound is 2\)/);
      }
    });
  }

  it('rejects beyond the bound when the instances are full, saying so', () => {
    const queue = { ...held([1, 0, 9], [2, 0, 9]), slots: slots(2) };
    const { admission } = admit(queue, { id: 3, now: 0, timeoutMs: 10 }, limits, maxConcurrency);
    expect(admission).toMatchObject({ verdict: 'reject', reason: expect.stringMatching(/at maxConcurrency \(2\)/) as unknown });
  });
});

describe('setEndpoints and finish', () => {
  const keys = (release: { request: { id: number }; key: string }[]) => release.map((r) => `${r.request.id}→${r.key}`);

  it('new ready endpoints take held requests oldest first, up to maxConcurrency each; the rest stay held', () => {
    const { queue, release } = setEndpoints(held([1, 0, 9], [2, 1, 9], [3, 2, 9], [4, 3, 9], [5, 4, 9]), ['a', 'b'], maxConcurrency);
    expect(keys(release)).toEqual(['1→a', '2→b', '3→a', '4→b']);
    expect(queue.held.map((r) => r.id)).toEqual([5]);
    expect(queue.slots).toEqual(slots(2, 2));
  });

  it('endpoints that stay keep their requests in flight; gone ones are forgotten', () => {
    const { queue, release } = setEndpoints({ slots: slots(2, 1), held: [] }, ['b', 'c'], maxConcurrency);
    expect(release).toEqual([]);
    expect(queue.slots).toEqual([
      { key: 'b', inFlight: 1 },
      { key: 'c', inFlight: 0 },
    ]);
  });

  it('no ready endpoint: keeps holding', () => {
    const { queue, release } = setEndpoints(held([1, 0, 9]), [], maxConcurrency);
    expect(release).toEqual([]);
    expect(queue.held).toHaveLength(1);
  });

  it('a finished request frees its slot for the oldest held request', () => {
    const full = { slots: slots(2, 2), held: held([1, 0, 9], [2, 1, 9]).held };
    const { queue, release } = finish(full, 'b', maxConcurrency);
    expect(keys(release)).toEqual(['1→b']);
    expect(queue.held.map((r) => r.id)).toEqual([2]);
    expect(queue.slots).toEqual(slots(2, 2));
  });

  it('a finished request with nothing held only frees its slot; one for a gone endpoint changes nothing', () => {
    expect(finish({ slots: slots(2, 1), held: [] }, 'a', maxConcurrency).queue.slots).toEqual(slots(1, 1));
    expect(finish({ slots: slots(2), held: [] }, 'z', maxConcurrency).queue.slots).toEqual(slots(2));
  });

  it('a revision that lost its endpoints holds again', () => {
    const { queue } = setEndpoints({ slots: slots(0), held: [] }, [], maxConcurrency);
    expect(admit(queue, { id: 1, now: 0, timeoutMs: 10 }, limits, maxConcurrency).admission.verdict).toBe('hold');
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
    expect(admit(abandon(full, 1), { id: 3, now: 0, timeoutMs: 10 }, limits, maxConcurrency).admission.verdict).toBe('hold');
  });
});
