import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { connectNats, createLogger, createObservability, subscribe, type LoadSample, type NatsConnection } from '@switchyard/shared';
import { startGrpcEcho } from '@switchyard/demo';
import { Api, controlPlane, eventually, startStack, statsSink, xdsEchoClient, type EchoClient, type Stack } from './support/stack.js';

/**
 * Issue 4's end-to-end load path, all-in-one as `syctl up` runs it: the control plane serves
 * clusters with `lrs_server: self`, so real `@grpc/grpc-js-xds` clients send LRS to the same
 * gRPC port, where the stats-sink aggregates it and publishes on the load subject.
 */
describe('LRS from proxyless gRPC clients to the load subject', () => {
  let nats: NatsServer;
  let stack: Stack;
  let backend: Awaited<ReturnType<typeof startGrpcEcho>>;
  let nc: NatsConnection;
  const samples: LoadSample[] = [];
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    backend = await startGrpcEcho(0, { revision: 'v1', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    stack = await startStack(nats, [controlPlane, statsSink], { env: { LOAD_REPORTING_INTERVAL_MS: '200' } });
    const api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/held', {
      domains: ['held.acme.test'],
      protocol: 'grpc',
      revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: backend.port }] }],
    });
    const logger = createLogger('test', 'silent');
    const observability = createObservability('test');
    nc = await connectNats({ servers: nats.url, name: 'load-subscriber', logger, observability });
    subscribe(nc, 'load', 'switchyard.load.acme.held.*', { logger, registry: observability.registry }, (m) => {
      samples.push(m.payload);
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await nc?.close();
    await stack?.stop();
    await backend?.close();
    await nats?.dispose();
  });

  it('two clients holding 3 and 4 calls in flight show as concurrency 7 from 2 nodes, then 0', async () => {
    const first = xdsEchoClient('held.acme.test', stack.grpcPort, 'lrs-client-1');
    const second = xdsEchoClient('held.acme.test', stack.grpcPort, 'lrs-client-2');
    clients.push(first, second);
    // Warm up: the clients fetch their config and open their LRS streams.
    await first.say();
    await second.say();
    const heldSince = Date.now();
    const held = [...Array.from({ length: 3 }, () => first.say(4000)), ...Array.from({ length: 4 }, () => second.say(4000))];
    const during = await eventually(() => {
      const sample = samples.findLast((s) => s.revision === 'v1');
      return sample !== undefined && sample.concurrency === 7 ? sample : false;
    }, 10_000);
    expect(during).toMatchObject({ tenant: 'acme', service: 'held', revision: 'v1', nodes: 2, schemaVersion: 1 });
    await Promise.all(held);
    await eventually(() => samples.findLast((s) => s.revision === 'v1')?.concurrency === 0, 10_000);
    // The report that brought the gauge back to 0 also counted the finished calls as successes.
    const settled = samples.filter((s) => s.ts >= heldSince && s.concurrency === 0 && s.responses['2xx'] > 0);
    expect(settled.length).toBeGreaterThan(0);
    expect(settled.every((s) => s.responses['5xx'] === 0)).toBe(true);
  });
});
