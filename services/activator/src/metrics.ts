import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ActivatorMetrics = ReturnType<typeof activatorMetrics>;

export function activatorMetrics(registry: Registry) {
  return {
    held: new Gauge({
      name: 'switchyard_activator_held_requests',
      help: 'Requests the activator holds for a revision without ready instances.',
      labelNames: ['tenant', 'service', 'revision'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'switchyard_activator_requests_total',
      help: 'Requests through the activator by outcome: forwarded, timed_out, rejected (beyond the queue bound), bad_request, upstream_error.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    queueSeconds: new Histogram({
      name: 'switchyard_activator_queue_seconds',
      help: 'Time a request spent held in the activator before it was forwarded or timed out.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    pokes: new Counter({
      name: 'switchyard_activator_pokes_total',
      help: 'Activation pokes published to the autoscaler (switchyard.activate.*).',
      registers: [registry],
    }),
  };
}
