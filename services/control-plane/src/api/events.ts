import { jetstream } from '@nats-io/jetstream';
import { publishDurable, type Logger, type NatsConnection, type ServiceStatusEvent } from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { registryCounter } from '../store/index.js';

export type StatusEvent = Omit<ServiceStatusEvent, 'schemaVersion' | 'ts'>;

/** Publishes service changes on `switchyard.status.<tenant>.<service>` (JetStream). */
export type StatusPublisher = (event: StatusEvent) => Promise<void>;

/**
 * The KV write is the change; the event only tells watchers about it. A failed publish is
 * logged and counted, never turned into a failed request. The message id makes a retried
 * publish of the same change a duplicate the stream drops.
 */
export function natsStatusPublisher(nc: NatsConnection, logger: Logger, registry: Registry): StatusPublisher {
  const js = jetstream(nc);
  const failures = registryCounter(
    registry,
    'switchyard_control_plane_status_publish_failures_total',
    'Service status events (switchyard.status.*) that could not be published.',
    ['event'],
  );
  return async (event) => {
    try {
      await publishDurable(
        js,
        'status',
        { schemaVersion: 1, ...event, ts: Date.now() },
        `status.${event.tenant}.${event.service}.${event.event}.${event.specRevision}`,
      );
    } catch (err) {
      failures.inc({ event: event.event });
      logger.warn({ err, tenant: event.tenant, service: event.service, event: event.event }, 'status event not published');
    }
  };
}
