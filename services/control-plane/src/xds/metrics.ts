import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';
import type { XdsCache } from './cache.js';

/** The engine's metrics, all `switchyard_xds_…`, registered on the service's registry. */
export interface XdsMetrics {
  streams: Gauge<'mode' | 'group'>;
  pushes: Counter<'type' | 'mode'>;
  pushBytes: Counter<'type'>;
  acks: Counter<'type'>;
  nacks: Counter<'type'>;
  pushLatency: Histogram<'type'>;
  badRequests: Counter<'reason'>;
  heldRequests: Gauge;
  pushQueue: Gauge;
  bytesInFlight: Gauge;
}

/** Re-registering on the same registry (a restarted engine in one process) reuses the metric. */
function once<M extends Metric>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

interface GaugeSources {
  cache: XdsCache;
  held: () => number;
  queued: () => number;
  bytesInFlight: () => number;
}

/** Scrape-time gauges read from whichever engine registered last on a registry. */
const sources = new WeakMap<Registry, GaugeSources>();

export function createXdsMetrics(registry: Registry, source: GaugeSources): XdsMetrics {
  sources.set(registry, source);
  const registers = [registry];
  const current = () => sources.get(registry)!;
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    once(registry, name, () => new Counter<L>({ name, help, labelNames, registers }));
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect?: (this: Gauge<L>) => void) =>
    once(registry, name, () => new Gauge<L>({ name, help, labelNames, registers, ...(collect ? { collect } : {}) }));
  /** A gauge read at scrape time from the engine's current numbers. */
  const readGauge = (name: string, help: string, read: (s: GaugeSources) => number) =>
    gauge(name, help, [], function () {
      this.set(read(current()));
    });
  once(
    registry,
    'switchyard_xds_resources',
    () =>
      new Gauge({
        name: 'switchyard_xds_resources',
        help: 'Resources in the xDS cache by node group and type.',
        labelNames: ['group', 'type'],
        registers,
        // xDS worker processes hold replicas: the same resources, counted once.
        aggregator: 'first',
        collect() {
          for (const row of current().cache.summary()) this.set({ group: row.group, type: row.type }, row.resources);
        },
      }),
  );
  return {
    streams: gauge('switchyard_xds_streams', 'Open xDS streams with an identified node.', ['mode', 'group']),
    pushes: counter('switchyard_xds_pushes_total', 'xDS responses sent.', ['type', 'mode']),
    pushBytes: counter('switchyard_xds_push_bytes_total', 'Bytes of xDS responses sent.', ['type']),
    acks: counter('switchyard_xds_acks_total', 'xDS responses ACKed by clients.', ['type']),
    nacks: counter('switchyard_xds_nacks_total', 'xDS responses rejected by clients (error_detail set).', ['type']),
    pushLatency: once(
      registry,
      'switchyard_xds_push_latency_seconds',
      () =>
        new Histogram({
          name: 'switchyard_xds_push_latency_seconds',
          help: 'From a cache update to a response carrying it being written to a stream.',
          labelNames: ['type'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    badRequests: counter(
      'switchyard_xds_bad_requests_total',
      'xDS requests that were malformed, for unknown types, or carried stale nonces.',
      ['reason'],
    ),
    heldRequests: readGauge(
      'switchyard_xds_held_requests',
      'Requests held because the cache has not loaded its first complete state.',
      (s) => s.held(),
    ),
    pushQueue: readGauge('switchyard_xds_push_queue', 'Streams waiting for the send budget.', (s) => s.queued()),
    bytesInFlight: readGauge(
      'switchyard_xds_send_bytes_in_flight',
      'Response bytes handed to gRPC and not yet taken by the transport (bounded by the send budget).',
      (s) => s.bytesInFlight(),
    ),
  };
}

/** Labelled metric children, looked up once: a push to a thousand streams touches them a thousand times. */
export function metricLabels(metrics: XdsMetrics) {
  const memo = <T>(make: (...keys: string[]) => T) => {
    const cache = new Map<string, T>();
    return (...keys: string[]): T => {
      const key = keys.join('\0');
      let child = cache.get(key);
      if (child === undefined) {
        child = make(...keys);
        cache.set(key, child);
      }
      return child;
    };
  };
  return {
    pushes: memo((type, mode) => metrics.pushes.labels(type!, mode!)),
    pushBytes: memo((type) => metrics.pushBytes.labels(type!)),
    acks: memo((type) => metrics.acks.labels(type!)),
    nacks: memo((type) => metrics.nacks.labels(type!)),
    latency: memo((type) => metrics.pushLatency.labels(type!)),
  };
}

export type MetricLabels = ReturnType<typeof metricLabels>;
