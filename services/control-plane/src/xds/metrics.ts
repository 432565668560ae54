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
  once(
    registry,
    'switchyard_xds_resources',
    () =>
      new Gauge({
        name: 'switchyard_xds_resources',
        help: 'Resources in the xDS cache by node group and type.',
        labelNames: ['group', 'type'],
        registers,
        collect() {
          for (const row of current().cache.summary()) this.set({ group: row.group, type: row.type }, row.resources);
        },
      }),
  );
  const metrics: XdsMetrics = {
    streams: once(
      registry,
      'switchyard_xds_streams',
      () =>
        new Gauge({
          name: 'switchyard_xds_streams',
          help: 'Open xDS streams with an identified node.',
          labelNames: ['mode', 'group'],
          registers,
        }),
    ),
    pushes: once(
      registry,
      'switchyard_xds_pushes_total',
      () => new Counter({ name: 'switchyard_xds_pushes_total', help: 'xDS responses sent.', labelNames: ['type', 'mode'], registers }),
    ),
    pushBytes: once(
      registry,
      'switchyard_xds_push_bytes_total',
      () => new Counter({ name: 'switchyard_xds_push_bytes_total', help: 'Bytes of xDS responses sent.', labelNames: ['type'], registers }),
    ),
    acks: once(
      registry,
      'switchyard_xds_acks_total',
      () => new Counter({ name: 'switchyard_xds_acks_total', help: 'xDS responses ACKed by clients.', labelNames: ['type'], registers }),
    ),
    nacks: once(
      registry,
      'switchyard_xds_nacks_total',
      () =>
        new Counter({
          name: 'switchyard_xds_nacks_total',
          help: 'xDS responses rejected by clients (error_detail set).',
          labelNames: ['type'],
          registers,
        }),
    ),
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
    badRequests: once(
      registry,
      'switchyard_xds_bad_requests_total',
      () =>
        new Counter({
          name: 'switchyard_xds_bad_requests_total',
          help: 'xDS requests that were malformed, for unknown types, or carried stale nonces.',
          labelNames: ['reason'],
          registers,
        }),
    ),
    heldRequests: once(
      registry,
      'switchyard_xds_held_requests',
      () =>
        new Gauge({
          name: 'switchyard_xds_held_requests',
          help: 'Requests held because the cache has not loaded its first complete state.',
          registers,
          collect() {
            this.set(current().held());
          },
        }),
    ),
    pushQueue: once(
      registry,
      'switchyard_xds_push_queue',
      () =>
        new Gauge({
          name: 'switchyard_xds_push_queue',
          help: 'Streams waiting for the send budget.',
          registers,
          collect() {
            this.set(current().queued());
          },
        }),
    ),
    bytesInFlight: once(
      registry,
      'switchyard_xds_send_bytes_in_flight',
      () =>
        new Gauge({
          name: 'switchyard_xds_send_bytes_in_flight',
          help: 'Response bytes handed to gRPC and not yet taken by the transport (bounded by the send budget).',
          registers,
          collect() {
            this.set(current().bytesInFlight());
          },
        }),
    ),
  };
  return metrics;
}
