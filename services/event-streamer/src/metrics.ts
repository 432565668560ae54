import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The event-streamer's metrics, all `switchyard_event_streamer_*` so they never collide with
 * the other services' on the shared registry of all-in-one mode. Created once per registry.
 */
export function eventStreamerMetrics(registry: Registry): EventStreamerMetrics {
  let metrics = metricsByRegistry.get(registry);
  if (metrics === undefined) {
    metrics = createMetrics(registry);
    metricsByRegistry.set(registry, metrics);
  }
  return metrics;
}

function createMetrics(registry: Registry) {
  return {
    hdsStreams: new Gauge({
      name: 'switchyard_event_streamer_hds_streams',
      help: 'Envoys connected over HDS (health-check delegates).',
      registers: [registry],
    }),
    endpointsChecked: new Gauge({
      name: 'switchyard_event_streamer_endpoints_checked',
      help: 'Endpoints being health-checked.',
      registers: [registry],
    }),
    unassignedEndpoints: new Gauge({
      name: 'switchyard_event_streamer_endpoints_unassigned',
      help: 'Endpoints with no Envoy able to check them (no capable Envoy connected).',
      registers: [registry],
    }),
    replicas: new Gauge({
      name: 'switchyard_event_streamer_replicas',
      help: 'Event-streamer replicas with a fresh heartbeat, as this replica sees them (with EVENT_STREAMER_REPLICATED).',
      registers: [registry],
    }),
    fleetEnvoys: new Gauge({
      name: 'switchyard_event_streamer_fleet_envoys',
      help: 'Envoys connected over HDS to any live replica: the fleet checks are assigned over.',
      registers: [registry],
    }),
    specifiersSent: new Counter({
      name: 'switchyard_event_streamer_hds_specifiers_sent_total',
      help: 'HealthCheckSpecifiers sent to Envoys (only when an assignment changed).',
      registers: [registry],
    }),
    results: new Counter({
      name: 'switchyard_event_streamer_hds_results_total',
      help: 'Endpoint results by outcome, from this replica\'s Envoys or forwarded by another replica; "forwarded" went to the replica that aggregates the endpoint, everything but that and "accepted" was dropped.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    hdsDropped: new Counter({
      name: 'switchyard_event_streamer_hds_messages_dropped_total',
      help: 'HDS messages dropped whole, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    transitions: new Counter({
      name: 'switchyard_event_streamer_health_transitions_total',
      help: 'Endpoint health transitions, by new state.',
      labelNames: ['state'],
      registers: [registry],
    }),
    transitionPublishSeconds: new Histogram({
      name: 'switchyard_event_streamer_transition_publish_seconds',
      help: 'From the result that caused a health transition to its JetStream acknowledgement.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    publishFailures: new Counter({
      name: 'switchyard_event_streamer_publish_failures_total',
      help: 'JetStream publishes that failed and will be retried, by subject kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    envoyEvents: new Counter({
      name: 'switchyard_event_streamer_envoy_events_total',
      help: 'Health-check and outlier events from Envoy published, by source and type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    envoyEventsDropped: new Counter({
      name: 'switchyard_event_streamer_envoy_events_dropped_total',
      help: 'Envoy events or log lines dropped, by source and reason.',
      labelNames: ['source', 'reason'],
      registers: [registry],
    }),
    tailedFiles: new Gauge({
      name: 'switchyard_event_streamer_tailed_files',
      help: 'Event log files being followed.',
      registers: [registry],
    }),
    watchers: new Gauge({
      name: 'switchyard_event_streamer_watchers',
      help: 'Open Watch API streams.',
      registers: [registry],
    }),
    watchEventsSent: new Counter({
      name: 'switchyard_event_streamer_watch_events_sent_total',
      help: 'Events sent to watchers.',
      registers: [registry],
    }),
    watchersEnded: new Counter({
      name: 'switchyard_event_streamer_watchers_ended_total',
      help: 'Watch streams ended by the server, by reason (slow, unauthenticated, permission_denied, invalid, revoked, error).',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

export type EventStreamerMetrics = ReturnType<typeof createMetrics>;

const metricsByRegistry = new WeakMap<Registry, EventStreamerMetrics>();
