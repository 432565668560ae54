import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../src/testing/index.js';
import { connectNats, untilConnected, ensureStreams, publish, publishDurable, subscribe, messageCounters } from '../src/nats.js';
import { createLogger } from '../src/logger.js';
import { consumeStream } from '../src/stream-follower.js';
import { createObservability } from '../src/observability.js';
import { streams, type LoadSample, type EndpointSet } from '../src/messages.js';
import type { NatsConnection } from '@nats-io/nats-core';

const logger = createLogger('test', 'silent');

describe('NATS plumbing against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const observability = createObservability('test');

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'test', logger, observability });
    await ensureStreams(nc);
  });
  afterAll(async () => {
    await nc.close();
    await server.dispose();
  });

  const sample: LoadSample = {
    schemaVersion: 1,
    tenant: 'acme',
    service: 'api',
    revision: 'blue',
    concurrency: 7,
    rps: 10,
    responses: { '2xx': 10, '3xx': 0, '4xx': 0, '5xx': 0 },
    errorRatio: 0,
    windowMs: 1000,
    ts: Date.now(),
    nodes: 1,
  };

  it('delivers typed messages and drops ones that fail their schema or name another subject, counting them', async () => {
    const received: LoadSample[] = [];
    const sub = subscribe(nc, 'load', 'switchyard.load.>', { logger, registry: observability.registry }, (m) => {
      received.push(m.payload);
    });
    nc.publish('switchyard.load.acme.api.blue', 'not json');
    nc.publish('switchyard.load.acme.api.blue', JSON.stringify({ ...sample, concurrency: -1 }));
    // The payload claims acme while the subject says globex: the subject decides, so it is dropped.
    nc.publish('switchyard.load.globex.api.blue', JSON.stringify(sample));
    nc.publish('switchyard.load.acme.api.green', JSON.stringify(sample));
    publish(nc, 'load', sample);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    sub.unsubscribe();
    expect(received).toEqual([sample]);
    const dropped = await messageCounters(observability.registry).dropped.get();
    const byReason = Object.fromEntries(dropped.values.map((v) => [v.labels.reason, v.value]));
    expect(byReason).toMatchObject({ not_json: 1, schema: 1, subject_mismatch: 2 });
  });

  it('refuses to publish a payload that fails its own schema', () => {
    expect(() => publish(nc, 'load', { ...sample, tenant: 'Not.A.Label' })).toThrow();
  });

  it('reports caught up at once on a subject with nothing to replay', async () => {
    const consumer = await consumeStream(
      nc,
      'endpoints',
      { stream: streams.endpoints.name, pattern: 'switchyard.endpoints.nobody.>', replay: { from: 'all' } },
      { logger, registry: observability.registry },
      () => undefined,
    );
    await consumer.caughtUp;
    await consumer.stop();
  });

  it('replays durable messages after a server restart', async () => {
    const set: EndpointSet = {
      schemaVersion: 1,
      tenant: 'acme',
      service: 'api',
      revision: 'blue',
      generation: 3,
      endpoints: [],
      ts: Date.now(),
    };
    const { js } = await ensureStreams(nc);
    await publishDurable(js, 'endpoints', set, 'acme-api-blue-3');
    await publishDurable(js, 'endpoints', set, 'acme-api-blue-3');
    await server.restart();
    await untilConnected(nc);
    const seen: number[] = [];
    const consumer = await consumeStream(
      nc,
      'endpoints',
      { stream: streams.endpoints.name, pattern: 'switchyard.endpoints.acme.>', replay: { from: 'all' } },
      { logger, registry: observability.registry },
      (m) => {
        seen.push(m.payload.generation);
      },
    );
    await consumer.caughtUp;
    await consumer.stop();
    expect(seen).toEqual([3]);
  });
});
