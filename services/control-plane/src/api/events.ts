import { jetstream } from '@nats-io/jetstream';
import {
  publishDurable,
  trafficSplit,
  type DeploymentEvent,
  type Logger,
  type NatsConnection,
  type ServiceRecord,
  type ServiceStatusEvent,
} from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { registryCounter } from '../store/index.js';

export type StatusEvent = Omit<ServiceStatusEvent, 'schemaVersion' | 'ts'>;

/** Publishes service changes on `switchyard.status.<tenant>.<service>` (JetStream). */
export type StatusPublisher = (event: StatusEvent) => Promise<void>;

/** The status event for a service record written at `specRevision`: its revisions and the split in force. */
export function statusEventOf(record: ServiceRecord, event: StatusEvent['event'], specRevision: number): StatusEvent {
  return {
    tenant: record.tenant,
    service: record.name,
    event,
    specRevision,
    revisions: record.spec.revisions.map((r) => r.name),
    traffic: trafficSplit(record.spec),
  };
}

export type DeployEvent = Omit<DeploymentEvent, 'schemaVersion' | 'ts'>;

/** Publishes deployment progress on `switchyard.deploy.<tenant>.<service>` (JetStream). */
export type DeployPublisher = (event: DeployEvent) => Promise<void>;

/** Like {@link natsStatusPublisher}: a failed publish is logged, never a failed step. */
export function natsDeployPublisher(nc: NatsConnection, logger: Logger, now: () => number): DeployPublisher {
  const js = jetstream(nc);
  return async (event) => {
    try {
      await publishDurable(js, 'deploy', { schemaVersion: 1, ...event, ts: now() });
    } catch (err) {
      logger.warn({ err, tenant: event.tenant, service: event.service, deployment: event.deploymentId }, 'deploy event not published');
    }
  };
}

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
