import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { deliverOptions, type ReplayFrom } from '@switchyard/shared';

/** The stream behind a KV bucket and the subject of one of its keys: KV changes are read as a stream. */
export const kvStream = (bucket: string) => `KV_${bucket}`;
export const kvSubject = (bucket: string, key: string) => `$KV.${bucket}.${key}`;

/**
 * An ordered JetStream consumer that knows how many messages it will replay before it is live:
 * `backlog` is the consumer's pending count at creation. That is what lets a loader say "the
 * initial state is complete" even for an empty stream, and a watcher send `caught_up`.
 * (nats-server 2.9 allows one filter subject per consumer, a subset of the stream's subjects.)
 */
export interface StreamReader {
  backlog: number;
  messages: AsyncIterable<JsMsg>;
  stop(): Promise<void>;
}

export async function openStreamReader(
  js: JetStreamClient,
  options: { stream: string; filter: string; replay: ReplayFrom; maxMessages?: number },
): Promise<StreamReader> {
  const consumer = await js.consumers.get(options.stream, { filter_subjects: options.filter, ...deliverOptions(options.replay) });
  const info = await consumer.info(true);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: options.maxMessages ?? 256 });
  return {
    backlog: info.num_pending,
    messages,
    stop: async () => {
      // Not close(): that waits until a reader has iterated past every buffered message.
      messages.stop();
      // Ordered consumers are ephemeral; deleting frees the server at once instead of after its inactivity timeout.
      await consumer.delete().catch(() => undefined);
    },
  };
}
