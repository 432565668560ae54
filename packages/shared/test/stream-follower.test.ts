import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { NatsServer } from '../src/testing/index.js';
import { connectNats, ensureStreams, openBucket, publishDurable, untilConnected, type KV } from '../src/nats.js';
import { consumeStream, followStream } from '../src/stream-follower.js';
import { followBucket, kvStream, type KvChange } from '../src/kv-follower.js';
import { createLogger } from '../src/logger.js';
import { createObservability } from '../src/observability.js';
import { buckets, streams, type EndpointSet } from '../src/messages.js';

const logger = createLogger('test', 'silent');

const endpointSet = (service: string, generation: number): EndpointSet => ({
  schemaVersion: 1,
  tenant: 'acme',
  service,
  revision: 'blue',
  generation,
  endpoints: [],
  ts: 1,
});

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('replay, then follow, against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  const observability = createObservability('test');
  const deps = { logger, registry: observability.registry, retryMs: 50 };

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'test', logger, observability });
    await ensureStreams(nc);
    kv = await openBucket(nc, buckets.config);
  });
  afterAll(async () => {
    await nc.close();
    await server.dispose();
  });

  /** Restarts the server without the consumers it held, as a replaced node or a restore from another store would. */
  async function restartLosingConsumers(stream: string): Promise<void> {
    await server.stop();
    await rm(join(server.storeDir, 'js', 'jetstream', '$G', 'streams', stream, 'obs'), { recursive: true, force: true });
    await server.restart();
    await untilConnected(nc);
  }

  it('is caught up only once every replayed message has been handled, however slow the handler', async () => {
    const { js } = await ensureStreams(nc);
    await Promise.all(Array.from({ length: 300 }, (_, i) => publishDurable(js, 'endpoints', endpointSet(`slow-${i}`, 1))));
    let handled = 0;
    const follower = await consumeStream(
      nc,
      'endpoints',
      { stream: streams.endpoints.name, pattern: 'switchyard.endpoints.acme.>', replay: { from: 'last_per_subject' } },
      deps,
      async () => {
        await new Promise((r) => setImmediate(r));
        handled++;
      },
    );
    await follower.caughtUp;
    expect(handled).toBe(300);
    await follower.stop();
  });

  it('keeps following after a nats-server restart that lost its consumer', async () => {
    const { js } = await ensureStreams(nc);
    const seen: string[] = [];
    const follower = await consumeStream(
      nc,
      'endpoints',
      { stream: streams.endpoints.name, pattern: 'switchyard.endpoints.acme.moved.>', replay: { from: 'all' } },
      deps,
      ({ payload }) => {
        seen.push(`${payload.service}@${payload.generation}`);
      },
    );
    await publishDurable(js, 'endpoints', endpointSet('moved', 1));
    await until(() => seen.length === 1, 'the first set');
    await restartLosingConsumers(streams.endpoints.name);
    await until(async () => {
      await publishDurable(js, 'endpoints', endpointSet('moved', 2), 'moved-2').catch(() => undefined);
      return seen.includes('moved@2');
    }, 'the set published after the restart');
    // Opened again right after the last message handled: nothing twice.
    expect(seen).toEqual(['moved@1', 'moved@2']);
    await follower.stop();
  });

  it('loads a bucket, then follows it, also across a restart that lost the watch', async () => {
    await kv.put('services.acme.a', '1');
    await kv.put('services.acme.b', '1');
    await kv.put('services.acme.a', '2');
    await kv.put('tokens.x', '1');
    const changes: KvChange[] = [];
    const follower = await followBucket(nc, buckets.config, { key: 'services.>' }, deps, (c) => changes.push(c));
    await follower.caughtUp;
    const text = (c: KvChange) => `${c.key}=${c.operation === 'PUT' ? new TextDecoder().decode(c.value) : c.operation}`;
    expect(changes.map(text)).toEqual(['services.acme.b=1', 'services.acme.a=2']);
    await kv.delete('services.acme.b');
    await until(() => changes.length === 3, 'the delete');
    await restartLosingConsumers(kvStream(buckets.config));
    await until(async () => {
      await kv.put('services.acme.c', '1').catch(() => undefined);
      return changes.some((c) => c.key === 'services.acme.c');
    }, 'the change made after the restart');
    expect(changes.slice(2, 4).map(text)).toEqual(['services.acme.b=DEL', 'services.acme.c=1']);
    expect(new Set(changes.map((c) => c.revision)).size).toBe(changes.length);
    await follower.stop();
  });

  it('follows only new messages when asked to, and re-opens after the last one handled', async () => {
    const seen: number[] = [];
    const follower = await followStream(
      nc,
      { stream: kvStream(buckets.config), filter: '$KV.switchyard-config.tokens.>', replay: { from: 'new' } },
      deps,
      (msg) => {
        seen.push(msg.seq);
      },
    );
    await follower.caughtUp;
    expect(seen).toEqual([]);
    const revision = await kv.put('tokens.y', '1');
    await until(() => seen.includes(revision), 'the new token');
    await follower.stop();
  });
});
