import type { Endpoint, EndpointSet, RevisionRef } from '@switchyard/shared';
import {
  abandon,
  admit,
  emptyQueue,
  expire,
  finish,
  nextDeadline,
  setEndpoints,
  type QueueLimits,
  type Release,
  type RevisionQueue,
} from './queue.js';

/**
 * The activator's state for every revision it has seen: the queue (src/queue.ts decides), the
 * waiting requests' callbacks, the ready endpoints from the latest endpoint set, the revision's
 * maxConcurrency and the timer for the next deadline. It applies the core's decisions; the HTTP
 * proxy only asks it where a request goes, and says when a forwarded one is done.
 */

/** `done` frees the request's slot on its endpoint: call it once, when the exchange with the instance is over. */
export type Outcome =
  | { kind: 'forward'; endpoint: Endpoint; heldMs: number; done: () => void }
  | { kind: 'reject'; retryAfterSeconds: number; reason: string }
  | { kind: 'timeout'; heldMs: number };

interface Revision {
  ref: RevisionRef;
  queue: RevisionQueue;
  generation: number;
  /** Ready endpoints by key (`address:port`). */
  ready: Map<string, Endpoint>;
  /** The service's maxConcurrency per instance, as the latest request's service record says. */
  maxConcurrency: number;
  waiters: Map<number, (outcome: Outcome) => void>;
  timer: NodeJS.Timeout | undefined;
}

export interface HoldingEvents {
  /** The number of requests held for a revision changed. */
  heldChanged(ref: RevisionRef, held: number): void;
}

export class Holding {
  private readonly revisions = new Map<string, Revision>();
  private nextId = 1;

  constructor(
    private readonly limits: QueueLimits,
    private readonly events: HoldingEvents,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Where a request for `ref` goes: at once to a ready endpoint with a free slot (fewer than
   * `maxConcurrency` of this activator's requests in flight), or once one frees (the promise
   * waits), or nowhere (rejected beyond the bound, or timed out). `cancel` takes a held request
   * out of the queue when its client goes away.
   */
  route(ref: RevisionRef, timeoutMs: number | undefined, maxConcurrency: number): { outcome: Promise<Outcome>; cancel: () => void } {
    const revision = this.revision(ref);
    revision.maxConcurrency = maxConcurrency;
    const id = this.nextId++;
    const arrivedAt = this.now();
    const { queue, admission } = admit(revision.queue, { id, now: arrivedAt, timeoutMs }, this.limits, maxConcurrency);
    revision.queue = queue;
    if (admission.verdict === 'forward') {
      return { outcome: Promise.resolve(this.forward(revision, admission.key, 0)), cancel: () => {} };
    }
    if (admission.verdict === 'reject') {
      const { retryAfterSeconds, reason } = admission;
      return { outcome: Promise.resolve({ kind: 'reject', retryAfterSeconds, reason }), cancel: () => {} };
    }
    const outcome = new Promise<Outcome>((resolve) => revision.waiters.set(id, resolve));
    this.schedule(revision);
    this.events.heldChanged(ref, revision.queue.held.length);
    const cancel = () => {
      if (!revision.waiters.delete(id)) return;
      revision.queue = abandon(revision.queue, id);
      this.events.heldChanged(ref, revision.queue.held.length);
    };
    return { outcome, cancel };
  }

  /** A revision's new endpoint set: its ready endpoints become the targets, and held requests take their free slots. */
  onEndpoints(set: EndpointSet): void {
    const revision = this.revision(set);
    if (set.generation <= revision.generation) return;
    revision.generation = set.generation;
    const ready = set.endpoints.filter((e) => e.state === 'ready');
    revision.ready = new Map(ready.map((e) => [endpointKey(e), e]));
    const { queue, release } = setEndpoints(revision.queue, [...revision.ready.keys()], revision.maxConcurrency);
    revision.queue = queue;
    this.releaseHeld(revision, release);
  }

  /** Whether the activator knows ready endpoints of the revision. */
  hasReady(ref: RevisionRef): boolean {
    return (this.revisions.get(`${ref.tenant}/${ref.service}/${ref.revision}`)?.queue.slots.length ?? 0) > 0;
  }

  /** Requests held per revision (for the admin API and the pokes' heartbeat). */
  held(): { ref: RevisionRef; held: number }[] {
    return [...this.revisions.values()].filter((r) => r.queue.held.length > 0).map((r) => ({ ref: r.ref, held: r.queue.held.length }));
  }

  /** Answers every held request as timed out (the activator stops). */
  close(): void {
    for (const revision of this.revisions.values()) {
      clearTimeout(revision.timer);
      const { queue, expired } = expire(revision.queue, Infinity);
      revision.queue = queue;
      for (const request of expired) this.settle(revision, request.id, { kind: 'timeout', heldMs: this.now() - request.arrivedAt });
    }
  }

  private revision(ref: RevisionRef): Revision {
    const key = `${ref.tenant}/${ref.service}/${ref.revision}`;
    let revision = this.revisions.get(key);
    if (revision === undefined) {
      const own = { tenant: ref.tenant, service: ref.service, revision: ref.revision };
      revision = {
        ref: own,
        queue: emptyQueue,
        generation: -1,
        ready: new Map(),
        maxConcurrency: Infinity,
        waiters: new Map(),
        timer: undefined,
      };
      this.revisions.set(key, revision);
    }
    return revision;
  }

  /** A forward to the endpoint `key` names; its `done` frees the slot, which may release a held request. */
  private forward(revision: Revision, key: string, heldMs: number): Outcome {
    const endpoint = revision.ready.get(key) as Endpoint;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const { queue, release } = finish(revision.queue, key, revision.maxConcurrency);
      revision.queue = queue;
      this.releaseHeld(revision, release);
    };
    return { kind: 'forward', endpoint, heldMs, done };
  }

  private releaseHeld(revision: Revision, release: Release[]): void {
    if (release.length === 0) return;
    const now = this.now();
    for (const { request, key } of release) this.settle(revision, request.id, this.forward(revision, key, now - request.arrivedAt));
    this.schedule(revision);
    this.events.heldChanged(revision.ref, revision.queue.held.length);
  }

  private settle(revision: Revision, id: number, outcome: Outcome): void {
    const resolve = revision.waiters.get(id);
    revision.waiters.delete(id);
    if (resolve !== undefined) resolve(outcome);
    // A request whose client left in the meantime never uses its slot.
    else if (outcome.kind === 'forward') outcome.done();
  }

  /** One timer per revision, for its earliest deadline. */
  private schedule(revision: Revision): void {
    clearTimeout(revision.timer);
    revision.timer = undefined;
    const deadline = nextDeadline(revision.queue);
    if (deadline === undefined) return;
    revision.timer = setTimeout(() => this.expireDue(revision), Math.max(0, deadline - this.now()));
    revision.timer.unref();
  }

  private expireDue(revision: Revision): void {
    const now = this.now();
    const { queue, expired } = expire(revision.queue, now);
    revision.queue = queue;
    for (const request of expired) this.settle(revision, request.id, { kind: 'timeout', heldMs: now - request.arrivedAt });
    this.schedule(revision);
    if (expired.length > 0) this.events.heldChanged(revision.ref, queue.held.length);
  }
}

function endpointKey(endpoint: Pick<Endpoint, 'address' | 'port'>): string {
  return `${endpoint.address}:${endpoint.port}`;
}
