import type { NatsConnection } from '@nats-io/nats-core';
import type { ReplayFrom } from './nats.js';
import { followStream, type FollowDeps, type StreamFollower } from './stream-follower.js';

/** The stream behind a KV bucket and the subject of a key (or key pattern) in it. */
export const kvStream = (bucket: string) => `KV_${bucket}`;
export const kvSubject = (bucket: string, key: string) => `$KV.${bucket}.${key}`;

/** One change of a KV key, as the bucket's stream stored it; the revision is its stream sequence. */
export interface KvChange {
  key: string;
  operation: 'PUT' | 'DEL' | 'PURGE';
  revision: number;
  value: Uint8Array;
}

/**
 * The one "load, then follow" KV reader: the last value of every key matching `key` first
 * (`caughtUp` resolves once they are all applied, so a restarted service serves nothing
 * before it has everything), then every change, once each and in order. It re-watches after a
 * reconnect or when the watch ends, from the revision after the last one applied.
 */
export function followBucket(
  nc: NatsConnection,
  bucket: string,
  options: { key?: string; replay?: ReplayFrom },
  deps: FollowDeps,
  apply: (change: KvChange) => void,
): Promise<StreamFollower> {
  const prefix = kvSubject(bucket, '');
  return followStream(
    nc,
    { stream: kvStream(bucket), filter: kvSubject(bucket, options.key ?? '>'), replay: options.replay ?? { from: 'last_per_subject' } },
    deps,
    (msg) => {
      const operation = msg.headers?.get('KV-Operation');
      apply({
        key: msg.subject.slice(prefix.length),
        operation: operation === 'DEL' || operation === 'PURGE' ? operation : 'PUT',
        revision: msg.seq,
        value: msg.data,
      });
    },
  );
}
