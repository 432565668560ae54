import { describe, expect, it } from 'vitest';
import { errors as natsErrors } from '@nats-io/nats-core';
// The error classes the client throws during a leader election are exported only here.
import { JetStreamApiError, JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';
import {
  isTransientStoreError,
  nextRetry,
  resolveConflict,
  StoreUnavailable,
  type Intent,
  type RetryPolicy,
  type StoredEntry,
} from '../../src/store/write-retry.js';

const apiError = (code: number, errCode: number, description: string) => new JetStreamApiError({ code, err_code: errCode, description });

describe('isTransientStoreError', () => {
  const cases: { label: string; err: unknown; want: boolean }[] = [
    { label: 'no responders during a leader election', err: new jserrors.JetStreamNotEnabled('jetstream is not enabled'), want: true },
    { label: 'a request timeout', err: new natsErrors.TimeoutError(), want: true },
    { label: 'no responders (core)', err: new natsErrors.NoRespondersError('$JS.API.STREAM.INFO.KV_config'), want: true },
    { label: 'disconnected', err: new StoreUnavailable(), want: true },
    {
      label: 'JetStream answers 503 (cluster not ready)',
      err: apiError(503, 10008, 'jetstream system temporarily unavailable'),
      want: true,
    },
    { label: 'a 503 status message', err: new JetStreamStatusError('no responders', 503), want: true },
    { label: 'wrong last sequence is an answer', err: apiError(400, 10071, 'wrong last sequence: 4'), want: false },
    { label: 'a bug', err: new TypeError('x is undefined'), want: false },
    { label: 'not an error', err: 'boom', want: false },
  ];
  it.each(cases)('$label → $want', ({ err, want }) => expect(isTransientStoreError(err)).toBe(want));
});

describe('nextRetry', () => {
  const policy: RetryPolicy = { budgetMs: 5000, firstDelayMs: 100, maxDelayMs: 1000 };
  const cases: { label: string; attempt: number; elapsed: number; want: ReturnType<typeof nextRetry> }[] = [
    { label: 'first failure waits the first delay', attempt: 1, elapsed: 10, want: { retryInMs: 100 } },
    { label: 'the delay doubles', attempt: 3, elapsed: 500, want: { retryInMs: 400 } },
    { label: 'the delay is capped', attempt: 8, elapsed: 2000, want: { retryInMs: 1000 } },
    { label: 'never sleeps past the budget', attempt: 8, elapsed: 4800, want: { retryInMs: 200 } },
    { label: 'gives up once the budget is spent', attempt: 9, elapsed: 5000, want: { giveUp: { retryAfterSeconds: 1 } } },
    { label: 'gives up after the budget', attempt: 2, elapsed: 9000, want: { giveUp: { retryAfterSeconds: 1 } } },
  ];
  it.each(cases)('$label', ({ attempt, elapsed, want }) =>
    expect(nextRetry(policy, attempt, 1_000_000, 1_000_000 + elapsed)).toEqual(want),
  );

  it('answers Retry-After in whole seconds of the longest delay', () => {
    expect(nextRetry({ budgetMs: 0, firstDelayMs: 100, maxDelayMs: 2500 }, 1, 0, 0)).toEqual({ giveUp: { retryAfterSeconds: 3 } });
  });
});

describe('resolveConflict (phantom conflicts)', () => {
  const create: Intent = { put: '{"domains":["a.test"]}', create: true };
  const update: Intent = { put: '{"domains":["b.test"]}', create: false };
  const remove: Intent = { delete: true };
  const holds = (value: string, revision = 7): StoredEntry => ({ deleted: false, value, revision });
  const deleted: StoredEntry = { deleted: true, revision: 9 };
  const cases: { label: string; intent: Intent; retried: boolean; stored: StoredEntry; want: ReturnType<typeof resolveConflict> }[] = [
    {
      label: 'first create attempt meets a key: real conflict',
      intent: create,
      retried: false,
      stored: holds(create.put),
      want: 'conflict',
    },
    {
      label: 'retried create finds its own bytes: success',
      intent: create,
      retried: true,
      stored: holds(create.put, 12),
      want: { ownWrite: 12 },
    },
    {
      label: 'retried create finds other bytes: real conflict',
      intent: create,
      retried: true,
      stored: holds('{"domains":["z.test"]}'),
      want: 'conflict',
    },
    { label: 'retried create finds no key: try again', intent: create, retried: true, stored: undefined, want: 'tryAgain' },
    { label: 'retried create finds a delete marker: try again', intent: create, retried: true, stored: deleted, want: 'tryAgain' },
    {
      label: 'first update attempt at a stale revision: real conflict',
      intent: update,
      retried: false,
      stored: holds(update.put),
      want: 'conflict',
    },
    {
      label: 'retried update finds its own bytes: success',
      intent: update,
      retried: true,
      stored: holds(update.put, 30),
      want: { ownWrite: 30 },
    },
    {
      label: 'retried update finds other bytes: real conflict',
      intent: update,
      retried: true,
      stored: holds(create.put),
      want: 'conflict',
    },
    { label: 'retried update finds the key deleted: real conflict', intent: update, retried: true, stored: deleted, want: 'conflict' },
    { label: 'first delete attempt at a stale revision: real conflict', intent: remove, retried: false, stored: deleted, want: 'conflict' },
    { label: 'retried delete finds a delete marker: success', intent: remove, retried: true, stored: deleted, want: { ownWrite: 9 } },
    { label: 'retried delete finds a value: real conflict', intent: remove, retried: true, stored: holds(create.put), want: 'conflict' },
  ];
  it.each(cases)('$label', ({ intent, retried, stored, want }) => expect(resolveConflict(intent, retried, stored)).toEqual(want));
});
