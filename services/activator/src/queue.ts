/**
 * The activator's queueing rules for one revision, as pure functions of a queue value and the
 * time: no I/O, no clock, no timers. The proxy (src/proxy.ts) holds the real requests and
 * applies what these functions decide.
 *
 * - A request for a revision with ready endpoints is forwarded at once.
 * - Otherwise it is held, up to `maxHeld` per revision, until the revision has ready
 *   endpoints or its deadline (arrival + the route's timeout) passes.
 * - Beyond the bound it is rejected: 503 with `retry-after`.
 * - The held count is the revision's concurrency the autoscaler must size for.
 */

export interface QueueLimits {
  /** Requests held per revision at most; more are rejected. */
  maxHeld: number;
  /** Timeout for a request whose route named none. */
  defaultTimeoutMs: number;
  /** What `retry-after` says to a rejected client. */
  retryAfterSeconds: number;
}

export interface HeldRequest {
  id: number;
  arrivedAt: number;
  deadline: number;
}

export interface RevisionQueue {
  /** Whether the revision has at least one ready endpoint to forward to. */
  ready: boolean;
  /** Held requests, oldest first. */
  held: readonly HeldRequest[];
}

export const emptyQueue: RevisionQueue = { ready: false, held: [] };

export type Admission =
  { verdict: 'forward' } | { verdict: 'hold'; request: HeldRequest } | { verdict: 'reject'; retryAfterSeconds: number; reason: string };

export interface Arrival {
  id: number;
  now: number;
  /** The route's timeout in milliseconds, if the request carried one (0 means none). */
  timeoutMs: number | undefined;
}

/** What happens to a request on arrival, and the queue after it. */
export function admit(queue: RevisionQueue, arrival: Arrival, limits: QueueLimits): { queue: RevisionQueue; admission: Admission } {
  if (queue.ready) return { queue, admission: { verdict: 'forward' } };
  if (queue.held.length >= limits.maxHeld) {
    const reason = `revision has no ready instance and already holds ${queue.held.length} requests (the bound is ${limits.maxHeld})`;
    return { queue, admission: { verdict: 'reject', retryAfterSeconds: limits.retryAfterSeconds, reason } };
  }
  const timeoutMs = arrival.timeoutMs !== undefined && arrival.timeoutMs > 0 ? arrival.timeoutMs : limits.defaultTimeoutMs;
  const request = { id: arrival.id, arrivedAt: arrival.now, deadline: arrival.now + timeoutMs };
  return { queue: { ...queue, held: [...queue.held, request] }, admission: { verdict: 'hold', request } };
}

/** The revision's endpoint set changed: once it has ready endpoints, every held request is released, oldest first. */
export function setReady(queue: RevisionQueue, ready: boolean): { queue: RevisionQueue; release: HeldRequest[] } {
  if (!ready) return { queue: { ...queue, ready }, release: [] };
  return { queue: { ready, held: [] }, release: [...queue.held] };
}

/** Requests whose deadline has passed leave the queue (they are answered 504). */
export function expire(queue: RevisionQueue, now: number): { queue: RevisionQueue; expired: HeldRequest[] } {
  const expired = queue.held.filter((r) => r.deadline <= now);
  if (expired.length === 0) return { queue, expired };
  return { queue: { ...queue, held: queue.held.filter((r) => r.deadline > now) }, expired };
}

/** A held request whose client went away leaves the queue. */
export function abandon(queue: RevisionQueue, id: number): RevisionQueue {
  return { ...queue, held: queue.held.filter((r) => r.id !== id) };
}

/** When the next held request times out, if any is held. */
export function nextDeadline(queue: RevisionQueue): number | undefined {
  let next: number | undefined;
  for (const r of queue.held) next = next === undefined ? r.deadline : Math.min(next, r.deadline);
  return next;
}
