import * as grpc from '@grpc/grpc-js';
import { grpcService, loadGrpcPackage, protoFiles } from '@switchyard/shared';
import type { WatchedEvent } from './event-format.js';

/**
 * A client of the Watch API for `syctl events` and scripts. It remembers the last sequence
 * of every kind it received; with `follow` it reconnects after the server ends the stream
 * (restart, or the watcher was too slow) and resumes exactly after what it already had.
 */

export interface WatchOptions {
  /** host:port of the event-streamer's gRPC server (all-in-one: the control plane's :18000). */
  address: string;
  token: string;
  tenant?: string;
  service?: string;
  kinds?: string[];
  /** Replay what JetStream retains (default), or only what happens from now on. */
  start?: 'beginning' | 'now';
  /** Keep streaming after the replay, reconnecting when the server ends the stream. */
  follow: boolean;
  onEvent: (event: WatchedEvent) => void;
  onCaughtUp?: () => void;
  /** Called before each reconnect, with the status that ended the previous stream. */
  onReconnect?: (status: grpc.StatusObject) => void;
  signal?: AbortSignal;
  channelOptions?: grpc.ChannelOptions;
  /** A mutual-TLS port needs a client certificate (default: plaintext, as the all-in-one serves). */
  credentials?: grpc.ChannelCredentials;
}

/** As decoded by proto-loader: fields at their default value are absent, 64-bit integers are strings. */
interface WatchResponseMessage {
  event?: Partial<Record<'kind' | 'stream' | 'sequence' | 'subject' | 'tenant' | 'service' | 'revision' | 'ts' | 'payload_json', string>>;
  caught_up?: object;
}

/** Statuses after which resuming can succeed; the others (bad token, bad request) end the watch. */
const retryable = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL, grpc.status.UNKNOWN]);

let clientConstructor: grpc.ServiceClientConstructor | undefined;

/** Resolves when the watch is over: caught up without `follow`, aborted, or ended by a non-retryable status (rejects). */
export async function watchEvents(options: WatchOptions): Promise<void> {
  clientConstructor ??= grpcService(loadGrpcPackage([protoFiles.watch]), 'switchyard.watch.v1.WatchService');
  const client = new clientConstructor(
    options.address,
    options.credentials ?? grpc.credentials.createInsecure(),
    options.channelOptions ?? {},
  );
  const after: Record<string, number> = {};
  const session = { answered: false };
  let backoffMs = 250;
  try {
    for (;;) {
      const outcome = await watchOnce(client, options, after, session);
      if (outcome === 'done' || options.signal?.aborted) return;
      // Resume only a stream that was up: a server that never answered is reported at once.
      const resumable = options.follow && session.answered && retryable.has(outcome.code);
      if (!resumable) throw Object.assign(new Error(outcome.details), { code: outcome.code });
      options.onReconnect?.(outcome);
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 10_000);
    }
  } finally {
    client.close();
  }
}

function watchOnce(
  client: grpc.Client,
  options: WatchOptions,
  after: Record<string, number>,
  session: { answered: boolean },
): Promise<'done' | grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${options.token}`);
  const resuming = Object.keys(after).length > 0;
  const request = {
    tenant: options.tenant ?? '',
    service: options.service ?? '',
    kinds: options.kinds ?? [],
    start: options.start === 'now' && !resuming ? 'START_NOW' : 'START_BEGINNING',
    after,
  };
  return new Promise((resolve) => {
    const call = (client as unknown as { Watch: (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<WatchResponseMessage> }).Watch(
      request,
      metadata,
    );
    let finished = false;
    const finish = (outcome: 'done' | grpc.StatusObject) => {
      if (finished) return;
      finished = true;
      options.signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => {
      call.cancel();
      finish('done');
    };
    options.signal?.addEventListener('abort', onAbort);
    call.on('data', (response: WatchResponseMessage) => {
      session.answered = true;
      if (response.event !== undefined) {
        const e = response.event;
        const sequence = Number(e.sequence ?? 0);
        after[e.kind ?? ''] = sequence;
        options.onEvent({
          kind: e.kind ?? '',
          stream: e.stream ?? '',
          sequence,
          subject: e.subject ?? '',
          tenant: e.tenant ?? '',
          service: e.service ?? '',
          revision: e.revision ?? '',
          ts: Number(e.ts ?? 0),
          payload: JSON.parse(e.payload_json ?? 'null') as unknown,
        });
      } else if (response.caught_up !== undefined) {
        options.onCaughtUp?.();
        if (!options.follow) onAbort();
      }
    });
    call.on('status', (status: grpc.StatusObject) => finish(status.code === grpc.status.OK ? 'done' : status));
    call.on('error', () => undefined);
  });
}
