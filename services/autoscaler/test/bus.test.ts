import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  subjectPattern,
  subscribe,
  type Endpoint,
  type NatsConnection,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { Registry } from 'prom-client';
import { BusPublisher } from '../src/bus.js';
import { autoscalerMetrics } from '../src/metrics.js';
import { until } from './helpers.js';

describe('BusPublisher endpoint sets', () => {
  const logger = createLogger('autoscaler-bus-test', process.env.TEST_LOG_LEVEL ?? 'silent');
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'test', logger, observability: createObservability('test') });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it('drops a set its schema refuses (counted) instead of retrying it, and publishes the next one', async () => {
    const { js, jsm } = await ensureStreams(nc);
    const registry = new Registry();
    const metrics = autoscalerMetrics(registry);
    const ref = { tenant: 'acme', service: 'web', revision: 'v1' };
    const received: Endpoint[][] = [];
    const sub = subscribe(nc, 'endpoints', subjectPattern('endpoints'), { logger, registry: new Registry() }, ({ payload }) => {
      received.push(payload.endpoints);
    });
    // A retry would wait an hour: the valid set can only arrive if the refused one was dropped.
    const bus = new BusPublisher(js, jsm, logger, metrics, Date.now, () => true, 3_600_000);
    const valid: Endpoint = { id: 'i-1', address: '127.0.0.1', port: 8080, state: 'ready' };

    bus.endpoints(ref, [{ ...valid, address: '' }]);
    bus.endpoints(ref, [valid]);
    await bus.flush();

    await until(() => received.length > 0, 10_000, 'the valid set');
    expect(received).toEqual([[valid]]);
    const failures = (await registry.getSingleMetric('switchyard_autoscaler_publish_failures_total')?.get())?.values ?? [];
    expect(failures.find((v) => v.labels.kind === 'endpoints')?.value).toBe(1);
    sub.unsubscribe();
  });
});
