import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from '@nats-io/nats-core';
import { NatsServer } from '../src/testing/index.js';
import { connectNats, publish, subscribe } from '../src/nats.js';
import { createLogger } from '../src/logger.js';
import { createObservability } from '../src/observability.js';
import { startTracing } from '../src/tracing.js';
import type { LoadSample } from '../src/messages.js';

describe('trace context across NATS', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const observability = createObservability('tracing-test');
  const logger = createLogger('tracing-test', 'silent');

  beforeAll(async () => {
    // What the OpenTelemetry SDK sets up when OTEL_EXPORTER_OTLP_ENDPOINT is given.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    startTracing('tracing-test', undefined);
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'tracing-test', logger, observability });
  });
  afterAll(async () => {
    await nc.close();
    await server.dispose();
    context.disable();
    trace.disable();
  });

  it("continues the publisher's trace in the subscriber's handler", async () => {
    const sample: LoadSample = {
      schemaVersion: 1,
      tenant: 'acme',
      service: 'api',
      revision: 'blue',
      concurrency: 1,
      rps: 1,
      responses: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 },
      errorRatio: 0,
      windowMs: 1000,
      ts: Date.now(),
      nodes: 1,
    };
    const seen = new Promise<string | undefined>((resolve) => {
      subscribe(nc, 'load', 'switchyard.load.>', { logger, registry: observability.registry }, () => {
        resolve(trace.getSpanContext(context.active())?.traceId);
      });
    });
    const span = trace.getTracer('test').startSpan('publish');
    context.with(trace.setSpan(context.active(), span), () => publish(nc, 'load', sample));
    span.end();
    expect(await seen).toBe(span.spanContext().traceId);
  });
});
