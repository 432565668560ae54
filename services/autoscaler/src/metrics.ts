import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The autoscaler's metrics, all named `switchyard_autoscaler_*` so they can share a registry with the other services. */
export function autoscalerMetrics(registry: Registry) {
  const revisionLabels = ['tenant', 'service', 'revision'] as const;
  return {
    loadSamples: new Counter({
      name: 'switchyard_autoscaler_load_samples_total',
      help: 'Load samples by verdict: accepted, out_of_order, from_future, unmanaged (no managed revision). Samples failing their schema count in switchyard_bus_messages_dropped_total{kind="load"}.',
      labelNames: ['result'],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'switchyard_autoscaler_decisions_total',
      help: 'Scaling decisions taken, by the rule that bounded them ("none" when unbounded).',
      labelNames: ['limited_by'],
      registers: [registry],
    }),
    desiredInstances: new Gauge({
      name: 'switchyard_autoscaler_desired_instances',
      help: 'Instances the last decision asked for, per revision.',
      labelNames: revisionLabels,
      registers: [registry],
    }),
    readyInstances: new Gauge({
      name: 'switchyard_autoscaler_ready_instances',
      help: 'Instances serving (ready, not draining), per revision.',
      labelNames: revisionLabels,
      registers: [registry],
    }),
    panicking: new Gauge({
      name: 'switchyard_autoscaler_panic',
      help: '1 while a revision is in panic mode.',
      labelNames: revisionLabels,
      registers: [registry],
    }),
    instanceEvents: new Counter({
      name: 'switchyard_autoscaler_instance_events_total',
      help: 'Instance lifecycle events (starting, ready, exited, start_failed, draining, stopped, replaced, not_runnable).',
      labelNames: ['event'],
      registers: [registry],
    }),
    drains: new Counter({
      name: 'switchyard_autoscaler_drains_total',
      help: 'Finished drains by outcome: completed (load fits the remaining instances), idle (no load reported), timeout, handover (after losing the lease).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    drainSeconds: new Histogram({
      name: 'switchyard_autoscaler_drain_seconds',
      help: 'Time from publishing an endpoint as draining to stopping its instance.',
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    endpointSets: new Counter({
      name: 'switchyard_autoscaler_endpoint_sets_published_total',
      help: 'Endpoint sets published on switchyard.endpoints.*.',
      registers: [registry],
    }),
    publishFailures: new Counter({
      name: 'switchyard_autoscaler_publish_failures_total',
      help: 'JetStream publishes that failed, by subject kind (endpoint sets are retried unless their schema refuses them).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    invalidRecords: new Counter({
      name: 'switchyard_autoscaler_invalid_service_records_total',
      help: 'Service records in the config bucket that failed their schema and were ignored.',
      registers: [registry],
    }),
    unhealthyReplaced: new Counter({
      name: 'switchyard_autoscaler_unhealthy_replaced_total',
      help: 'Instances replaced after staying unhealthy longer than the health check grace period.',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'switchyard_autoscaler_leader',
      help: '1 while this replica holds the leader lease and acts.',
      registers: [registry],
    }),
    leaseTransitions: new Counter({
      name: 'switchyard_autoscaler_lease_transitions_total',
      help: 'Leader lease acquisitions and losses of this replica.',
      labelNames: ['transition'],
      registers: [registry],
    }),
    revisions: new Gauge({
      name: 'switchyard_autoscaler_revisions',
      help: 'Revisions known from the desired state, by source (command, image, static) and whether the configured provider runs them.',
      labelNames: ['source', 'runnable'],
      registers: [registry],
    }),
  };
}

export type AutoscalerMetrics = ReturnType<typeof autoscalerMetrics>;
