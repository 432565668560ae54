/**
 * The activator's queueing rules for one revision, as pure functions of a queue value and the
 * time: no I/O, no clock, no timers. src/holding.ts holds the real requests and applies what
 * these functions decide.
 *
 * - A request is forwarded at once to the ready endpoint with the fewest requests in flight
 *   from this activator, if one has fewer than the revision's maxConcurrency.
 * - Otherwise it is held, up to `maxHeld` per revision, until a slot frees (a forwarded request
 *   ends, or the endpoint set brings more ready endpoints) or its deadline (arrival + the
 *   route's timeout) passes. Held requests take free slots oldest first.
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

/** A ready endpoint (by key) and the requests this activator has in flight to it. */
export interface Slot {
  key: string;
  inFlight: number;
}

export interface RevisionQueue {
  /** The revision's ready endpoints, in the endpoint set's order. */
  slots: readonly Slot[];
  /** Held requests, oldest first. */
  held: readonly HeldRequest[];
}

export const emptyQueue: RevisionQueue = { slots: [], held: [] };

export type Admission =
  | { verdict: 'forward'; key: string }
  | { verdict: 'hold'; request: HeldRequest }
  | { verdict: 'reject'; retryAfterSeconds: number; reason: string };

export interface Arrival {
  id: number;
  now: number;
  /** The route's timeout in milliseconds, if the request carried one (0 means none). */
  timeoutMs: number | undefined;
}

/** A held request and the endpoint it goes to now. */
export interface Release {
  request: HeldRequest;
  key: string;
}

/** What happens to a request on arrival, and the queue after it. */
export function admit(
  queue: RevisionQueue,
  arrival: Arrival,
  limits: QueueLimits,
  maxConcurrency: number,
): { queue: RevisionQueue; admission: Admission } {
  const slot = queue.held.length === 0 ? freeSlot(queue.slots, maxConcurrency) : undefined;
  if (slot !== undefined) return { queue: { ...queue, slots: take(queue.slots, slot) }, admission: { verdict: 'forward', key: slot.key } };
  if (queue.held.length >= limits.maxHeld) {
    const why =
      queue.slots.length === 0 ? 'revision has no ready instance' : `revision's ready instances are at maxConcurrency (${maxConcurrency})`;
    const reason = `${why} and the activator already holds ${queue.held.length} requests (the bound is ${limits.maxHeld})`;
    return { queue, admission: { verdict: 'reject', retryAfterSeconds: limits.retryAfterSeconds, reason } };
  }
  const timeoutMs = arrival.timeoutMs !== undefined && arrival.timeoutMs > 0 ? arrival.timeoutMs : limits.defaultTimeoutMs;
  const request = { id: arrival.id, arrivedAt: arrival.now, deadline: arrival.now + timeoutMs };
  return { queue: { ...queue, held: [...queue.held, request] }, admission: { verdict: 'hold', request } };
}

/**
 * The revision's ready endpoints changed: endpoints that stay keep their requests in flight,
 * and held requests take the free slots, oldest first.
 */
export function setEndpoints(
  queue: RevisionQueue,
  keys: readonly string[],
  maxConcurrency: number,
): { queue: RevisionQueue; release: Release[] } {
  const inFlight = new Map(queue.slots.map((s) => [s.key, s.inFlight]));
  return fill({ ...queue, slots: keys.map((key) => ({ key, inFlight: inFlight.get(key) ?? 0 })) }, maxConcurrency);
}

/** A forwarded request to `key` ended: its slot goes to the oldest held request. */
export function finish(queue: RevisionQueue, key: string, maxConcurrency: number): { queue: RevisionQueue; release: Release[] } {
  const slots = queue.slots.map((s) => (s.key === key && s.inFlight > 0 ? { key, inFlight: s.inFlight - 1 } : s));
  return fill({ ...queue, slots }, maxConcurrency);
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

/** Held requests into free slots, oldest first. */
function fill(queue: RevisionQueue, maxConcurrency: number): { queue: RevisionQueue; release: Release[] } {
  let { slots } = queue;
  const release: Release[] = [];
  for (const request of queue.held) {
    const slot = freeSlot(slots, maxConcurrency);
    if (slot === undefined) break;
    slots = take(slots, slot);
    release.push({ request, key: slot.key });
  }
  return { queue: { slots, held: queue.held.slice(release.length) }, release };
}

/** The slot with the fewest requests in flight (the first of equals), if it has room. */
function freeSlot(slots: readonly Slot[], maxConcurrency: number): Slot | undefined {
  let best: Slot | undefined;
  for (const s of slots) if (best === undefined || s.inFlight < best.inFlight) best = s;
  return best !== undefined && best.inFlight < maxConcurrency ? best : undefined;
}

function take(slots: readonly Slot[], slot: Slot): Slot[] {
  return slots.map((s) => (s === slot ? { key: s.key, inFlight: s.inFlight + 1 } : s));
}
