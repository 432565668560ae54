import { ZodError } from 'zod';
import {
  publishDurable,
  streams,
  subjectPattern,
  type Endpoint,
  type InstanceEvent,
  type JetStreamClient,
  type JetStreamManager,
  type Logger,
  type RevisionRef,
  type ScaleDecision,
  messages,
} from '@switchyard/shared';
import { revisionKey } from './revision-plans.js';
import type { AutoscalerMetrics } from './metrics.js';

/**
 * Everything the autoscaler writes to the bus, all on JetStream. Endpoint sets are the ones
 * that must arrive: per revision they are published one at a time, a burst of changes is
 * coalesced into the newest full set, and a failed publish is retried with the newest set.
 * Generations grow by at least one per set and never fall below the publisher's clock in
 * milliseconds, so a replica taking over from another (which may have published up to a
 * lease period earlier) continues above its predecessor's generations without reading them.
 */

interface EndpointQueue {
  ref: RevisionRef;
  next: Endpoint[] | undefined;
  generation: number;
  running: Promise<void> | undefined;
}

export class BusPublisher {
  private readonly queues = new Map<string, EndpointQueue>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly logger: Logger,
    private readonly metrics: AutoscalerMetrics,
    private readonly now: () => number,
    /** Whether this replica may still publish endpoint sets (it holds the lease). */
    private readonly mayPublish: () => boolean,
    private readonly retryMs = 1000,
  ) {}

  decision(payload: ScaleDecision): void {
    publishDurable(this.js, 'scale', payload).catch((err: unknown) => this.failed('scale', err));
  }

  instanceEvent(payload: InstanceEvent): void {
    publishDurable(this.js, 'instance', payload).catch((err: unknown) => this.failed('instance', err));
  }

  /** Publishes `endpoints` as the revision's full set (after any set still in flight). */
  endpoints(ref: RevisionRef, endpoints: Endpoint[]): void {
    const key = revisionKey(ref);
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = { ref, next: undefined, generation: 0, running: undefined };
      this.queues.set(key, queue);
    }
    queue.next = endpoints;
    if (queue.running === undefined) queue.running = this.drainQueue(queue);
  }

  /** Resolves once every endpoint set handed over so far is published (or given up on by `close`). */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.running));
  }

  /** The last decision any replica published for a revision, to resume from after a takeover. */
  async lastDecision(ref: RevisionRef): Promise<ScaleDecision | undefined> {
    const subject = subjectPattern('scale', ref).replace(/\*$/, ref.revision);
    const stored = await this.jsm.streams.getMessage(streams.events.name, { last_by_subj: subject });
    if (stored === null) return undefined;
    const parsed = messages.scaleDecision.safeParse(stored.json());
    return parsed.success ? parsed.data : undefined;
  }

  private async drainQueue(queue: EndpointQueue): Promise<void> {
    while (queue.next !== undefined) {
      if (!this.mayPublish()) {
        // A replica that lost the lease must not overwrite its successor's sets with a retry.
        queue.next = undefined;
        break;
      }
      const endpoints = queue.next;
      queue.next = undefined;
      const generation = Math.max(queue.generation + 1, this.now());
      try {
        await publishDurable(
          this.js,
          'endpoints',
          { schemaVersion: 1, ...queue.ref, generation, endpoints, ts: this.now() },
          `${revisionKey(queue.ref)}@${generation}`,
        );
        queue.generation = generation;
        this.metrics.endpointSets.inc();
      } catch (err) {
        this.failed('endpoints', err);
        queue.generation = generation;
        // A set its own schema refuses can never be published: retrying it would only hold
        // back the next one. Anything else (NATS, JetStream) is retried.
        if (err instanceof ZodError) continue;
        queue.next ??= endpoints;
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      }
    }
    queue.running = undefined;
  }

  private failed(kind: string, err: unknown): void {
    this.metrics.publishFailures.inc({ kind });
    this.logger.warn({ err, kind }, 'JetStream publish failed');
  }
}
