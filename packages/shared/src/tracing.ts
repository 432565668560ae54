import { context, propagation, trace, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

const w3c = new W3CTraceContextPropagator();
let sdk: NodeSDK | undefined;

/**
 * Starts OpenTelemetry tracing. Spans are exported over OTLP only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; W3C trace context is propagated either way, so a trace
 * started upstream keeps its id across services even without an exporter here.
 */
export function startTracing(serviceName: string, otlpEndpoint: string | undefined): void {
  propagation.setGlobalPropagator(w3c);
  if (otlpEndpoint === undefined || sdk !== undefined) return;
  sdk = new NodeSDK({ serviceName, traceExporter: new OTLPTraceExporter() });
  sdk.start();
}

export async function stopTracing(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown();
}

export const tracer = (name: string) => trace.getTracer(`switchyard.${name}`);

interface HeaderCarrier {
  set(key: string, value: string): void;
  get(key: string): string;
  has(key: string): boolean;
}

/** Writes the active span's `traceparent`/`tracestate` into NATS message headers. */
export function injectTraceContext(headers: HeaderCarrier, ctx: Context = context.active()): void {
  w3c.inject(ctx, headers, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
}

/** Reads trace context from NATS message headers, so the receiver's span continues the sender's trace. */
export function extractTraceContext(headers: HeaderCarrier | undefined): Context {
  if (headers === undefined) return context.active();
  return w3c.extract(context.active(), headers, {
    get: (carrier, key) => (carrier.has(key) ? carrier.get(key) : undefined),
    keys: () => ['traceparent', 'tracestate'],
  });
}
