import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Status } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';
import {
  decodeMessage,
  deliverOptions,
  messageCounters,
  whileJetStreamStarts,
  withConsumerSpan,
  type ReplayFrom,
  type TypedMessage,
} from './nats.js';
import type { SubjectKindName } from './messages.js';
import { extractTraceContext } from './tracing.js';

/**
 * The one JetStream "replay, then follow" reader every service uses: an ordered consumer that
 * knows how many messages it replays before it is live.
 */

export interface StreamReaderOptions {
  stream: string;
  /** One filter subject (nats-server 2.9 allows one per consumer), a subset of the stream's subjects. */
  filter: string;
  replay: ReplayFrom;
  maxMessages?: number;
}

/**
 * An ordered consumer and its backlog: the consumer's pending count when the server created it,
 * read before delivery starts. (Read after `consume()`, the count can already exclude messages
 * delivered to this process but not yet handled, and "caught up" would come too early.)
 */
export interface StreamReader {
  backlog: number;
  /** The stream sequence just before the first message this reader delivers. */
  startAfter: number;
  messages: AsyncIterable<JsMsg>;
  stop(): Promise<void>;
}

export async function openStreamReader(js: JetStreamClient, options: StreamReaderOptions): Promise<StreamReader> {
  const consumer = await js.consumers.get(options.stream, { filter_subjects: options.filter, ...deliverOptions(options.replay) });
  const created = await consumer.info(true);
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: options.maxMessages ?? 256,
    expires: pullExpiresMs,
    idle_heartbeat: idleHeartbeatMs,
  });
  void endWhenSilent(messages);
  return {
    backlog: created.num_pending,
    startAfter: created.delivered.stream_seq,
    messages,
    stop: async () => {
      // Not close(): that waits until a reader has iterated past every buffered message.
      messages.stop();
      // Ordered consumers are ephemeral; deleting frees the server at once instead of after its inactivity timeout.
      await consumer.delete().catch(() => undefined);
    },
  };
}

/**
 * The server heartbeats an idle pull every {@link idleHeartbeatMs}. The client's own recovery
 * from missed heartbeats backs off for up to 30 s while a stream elects a leader (a lost NATS
 * node), so a reader that misses two ends instead, and its follower opens a new one after the
 * last message handled.
 */
const idleHeartbeatMs = 2000;
const pullExpiresMs = 10_000;

async function endWhenSilent(messages: ConsumerMessages): Promise<void> {
  for await (const note of messages.status()) {
    if (note.type === 'heartbeats_missed') {
      messages.stop();
      return;
    }
  }
}

export interface StreamFollower {
  /** Resolves once every message of the first replay has been handled. */
  caughtUp: Promise<void>;
  /** The stream sequence of the last message handled. */
  readonly sequence: number;
  stop(): Promise<void>;
}

export interface FollowDeps {
  logger: Logger;
  /** Delay before opening again after the reader failed; doubles up to 10× this. */
  retryMs?: number;
}

/**
 * Replays a stream, then follows it for as long as it runs. Each message is handled (awaited,
 * in a CONSUMER span that continues the publisher's trace) before the next; a handler that
 * throws is logged and skipped. After a NATS reconnect, or when the reader ends, it opens again
 * right after the last message handled: a server that lost the ephemeral consumer (restarted
 * from another store, a replaced cluster node) never leaves it silently stalled.
 */
export async function followStream(
  nc: NatsConnection,
  options: StreamReaderOptions,
  deps: FollowDeps,
  handle: (msg: JsMsg) => void | Promise<void>,
): Promise<StreamFollower> {
  const js = jetstream(nc);
  const first = await whileJetStreamStarts(`a reader of ${options.stream}`, deps.logger, () => openStreamReader(js, options));
  let position = first.startAfter;
  let current: StreamReader | undefined = first;
  let stopped = false;
  let reopenRequested = false;
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));

  const readAll = async (reader: StreamReader) => {
    if (reader.backlog === 0) markCaughtUp();
    let seen = 0;
    for await (const msg of reader.messages) {
      try {
        await withConsumerSpan(msg.subject, extractTraceContext(msg.headers as Parameters<typeof extractTraceContext>[0]), () =>
          handle(msg),
        );
      } catch (err) {
        deps.logger.error({ err, subject: msg.subject }, 'stream handler failed; message skipped');
      }
      position = msg.seq;
      // Pending 0: nothing more was stored when this one was delivered (a safeguard should the count be off).
      if (++seen >= reader.backlog || msg.info.pending === 0) markCaughtUp();
    }
  };

  const run = async () => {
    const retryMs = deps.retryMs ?? 500;
    let failures = 0;
    while (!stopped) {
      try {
        const replay: ReplayFrom = position > 0 ? { from: 'sequence', sequence: position + 1 } : options.replay;
        current ??= await openStreamReader(js, { ...options, replay });
        if (stopped) break;
        await readAll(current);
        failures = reopenRequested ? 0 : failures + 1;
      } catch (err) {
        failures += 1;
        deps.logger.warn({ err, stream: options.stream, filter: options.filter }, 'stream reader failed; opening again');
      }
      reopenRequested = false;
      const ended = current;
      current = undefined;
      await ended?.stop();
      if (!stopped && failures > 0) await delay(Math.min(retryMs * 2 ** (failures - 1), retryMs * 10));
    }
  };

  // nats.js hands out a queued iterator: stopping it unregisters the listener.
  const statuses = nc.status() as AsyncIterable<Status> & { stop(): void };
  const reopenOnReconnect = async () => {
    for await (const status of statuses) {
      if (stopped) break;
      if (status.type === 'reconnect') {
        reopenRequested = true;
        await current?.stop();
      }
    }
  };
  const done = run();
  void reopenOnReconnect();
  return {
    caughtUp,
    get sequence() {
      return position;
    },
    stop: async () => {
      stopped = true;
      statuses.stop();
      await current?.stop();
      await done;
    },
  };
}

/**
 * {@link followStream} for one subject kind: typed and validated like `subscribe`; messages
 * that fail their schema are counted and dropped. The handler gets the stream sequence, which
 * watchers use as their resume position.
 */
export async function consumeStream<K extends SubjectKindName>(
  nc: NatsConnection,
  name: K,
  options: { stream: string; pattern: string; replay: ReplayFrom },
  deps: { logger: Logger; registry: Registry },
  handler: (message: TypedMessage<K>, sequence: number) => void | Promise<void>,
): Promise<StreamFollower> {
  const { dropped } = messageCounters(deps.registry);
  return followStream(nc, { stream: options.stream, filter: options.pattern, replay: options.replay }, deps, async (msg) => {
    const decoded = decodeMessage(name, msg, deps.logger, dropped);
    if (decoded === undefined) return;
    try {
      await handler(decoded, msg.seq);
    } catch (err) {
      dropped.inc({ kind: name, reason: 'handler_error' });
      throw err;
    }
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
