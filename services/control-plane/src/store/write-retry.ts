import { isJetStreamUnavailable } from '@switchyard/shared';

/**
 * The rules for retrying a config write while JetStream cannot take it (a stream leader
 * election after a node loss, a reconnect to another node), with no I/O: the store's write
 * loop asks these functions what to do next.
 */

/** The bucket cannot be written now: NATS is disconnected, or JetStream did not answer in time. */
export class StoreUnavailable extends Error {
  constructor(
    /** When a client may try again, in whole seconds (the API's `Retry-After`). */
    readonly retryAfterSeconds = 1,
    message = 'the config store (NATS JetStream) is not connected',
  ) {
    super(message);
    this.name = 'StoreUnavailable';
  }
}

/** Whether a write may be retried: the store said so, or JetStream is unavailable now (shared rule). */
export function isTransientStoreError(err: unknown): boolean {
  return err instanceof StoreUnavailable || isJetStreamUnavailable(err);
}

export interface RetryPolicy {
  /** How long one write keeps retrying, from its first attempt. */
  budgetMs: number;
  /** The wait after the first failure; it doubles up to {@link maxDelayMs}. */
  firstDelayMs: number;
  maxDelayMs: number;
}

/** Covers a JetStream leader election (seconds) and a client reconnect to another node. */
export const defaultRetryPolicy: RetryPolicy = { budgetMs: 8000, firstDelayMs: 100, maxDelayMs: 1000 };

export type RetryStep = { retryInMs: number } | { giveUp: { retryAfterSeconds: number } };

/**
 * After attempt number `attempt` (1-based) failed transiently: wait and retry while the budget
 * lasts (never sleeping past it), else give up with the `Retry-After` to answer.
 */
export function nextRetry(policy: RetryPolicy, attempt: number, startedAt: number, now: number): RetryStep {
  const left = startedAt + policy.budgetMs - now;
  if (left <= 0) return { giveUp: { retryAfterSeconds: Math.max(1, Math.ceil(policy.maxDelayMs / 1000)) } };
  const backoff = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1));
  return { retryInMs: Math.min(backoff, left) };
}

/** What the bucket holds under the key after a compare-and-set failed. */
export type StoredEntry = { deleted: false; value: string; revision: number } | { deleted: true; revision: number } | undefined;

/** What the write was: a put of these bytes (create or update) or a delete. */
export type Intent = { put: string; create: boolean } | { delete: true };

export type ConflictVerdict =
  /** The earlier, timed-out attempt of this very write landed: succeed with its revision. */
  | { ownWrite: number }
  /** Someone else's write is in the way: a real conflict (409). */
  | 'conflict'
  /** The key is free again: the create can simply be tried once more. */
  | 'tryAgain';

/**
 * A compare-and-set failed. On a first attempt that is a real conflict. On a retry it may be
 * this write's own earlier attempt, which landed although its answer was lost: the bucket then
 * holds exactly the bytes being written (or, for a delete, a delete marker), and the write has
 * succeeded — answering 409 "created by someone else" would be a phantom conflict.
 */
export function resolveConflict(intent: Intent, retried: boolean, stored: StoredEntry): ConflictVerdict {
  if (!retried) return 'conflict';
  if ('delete' in intent) return stored === undefined || stored.deleted ? { ownWrite: stored?.revision ?? 0 } : 'conflict';
  if (stored === undefined || stored.deleted) return intent.create ? 'tryAgain' : 'conflict';
  return stored.value === intent.put ? { ownWrite: stored.revision } : 'conflict';
}
