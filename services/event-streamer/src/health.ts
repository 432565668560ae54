import type * as grpc from '@grpc/grpc-js';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import {
  buckets,
  consumeStream,
  followBucket,
  generationFromFuture,
  grpcService,
  loadGrpcPackage,
  messageCounters,
  parseConfigKey,
  protoFiles,
  publishDurable,
  serviceRecord,
  streams,
  subjectPattern,
  type HealthTransition,
  type KV,
  type Logger,
  type NatsConnection,
  type StreamFollower,
} from '@switchyard/shared';
import { HealthCoordinator } from './coordinator.js';
import { HdsServer } from './hds.js';
import type { EventStreamerMetrics } from './metrics.js';
import { TransitionPublisher } from './publisher.js';
import { parseJson } from './parse-json.js';
import { Replication } from './replication.js';

/**
 * Health checking through the Envoy fleet: loads what to check from NATS (service records
 * from the config KV, endpoint sets from their stream, last published states from the health
 * stream), serves HDS, and publishes transitions. HDS sends nothing until the state is loaded.
 */

export interface HealthCheckingOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  grpcServer: grpc.Server;
  logger: Logger;
  registry: Registry;
  metrics: EventStreamerMetrics;
  checkersPerEndpoint: number;
  /** How often Envoys report (the specifier's `interval`); votes older than three intervals are stale. */
  reportIntervalMs: number;
  now?: () => number;
  onPublished?: (transition: HealthTransition, latencyMs: number) => void;
  /** With several event-streamer replicas: this one's id, its heartbeat period and the members bucket. */
  replication?: { replica: string; heartbeatMs: number; members: KV };
}

export interface HealthChecking {
  coordinator: HealthCoordinator;
  hds: HdsServer;
  publisher: TransitionPublisher;
  replication: Replication | undefined;
  /** Resolves once the desired state is loaded and HDS serves assignments. */
  loaded: Promise<void>;
  stop(): Promise<void>;
}

export async function startHealthChecking(options: HealthCheckingOptions): Promise<HealthChecking> {
  const { js, logger, metrics } = options;
  const now = options.now ?? Date.now;
  const { dropped } = messageCounters(options.registry);
  const coordinator = new HealthCoordinator({
    checkersPerEndpoint: options.checkersPerEndpoint,
    staleAfterMs: 3 * options.reportIntervalMs,
  });
  const publisher = new TransitionPublisher({
    publish: (transition, msgId) => publishDurable(js, 'health', transition, msgId),
    metrics,
    logger,
    ...(options.onPublished ? { onPublished: options.onPublished } : {}),
  });
  const submit = (transitions: HealthTransition[]) => transitions.forEach((t) => publisher.submit(t));
  const replication =
    options.replication === undefined
      ? undefined
      : new Replication({
          ...options.replication,
          nc: options.nc,
          coordinator,
          metrics,
          logger,
          registry: options.registry,
          now,
          onChange: () => hds.scheduleFlush(),
          onTransitions: submit,
        });
  const hds = new HdsServer({
    coordinator,
    ...(replication === undefined ? {} : { fleet: replication, route: (checker, results, at) => replication.route(checker, results, at) }),
    reportIntervalMs: options.reportIntervalMs,
    metrics,
    logger,
    now,
    onTransitions: submit,
  });
  const service = grpcService(loadGrpcPackage([protoFiles.hds]), 'envoy.service.health.v3.HealthDiscoveryService');
  options.grpcServer.addService(service.service, hds.implementation());

  // With replicas, the states the others publish keep being followed: whichever takes over an endpoint knows its state.
  const published = await recoverPublishedStates(options.nc, coordinator, logger, options.registry, replication !== undefined);

  const onChange = () => hds.scheduleFlush();
  const services = await followBucket(options.nc, buckets.config, { key: 'services.>' }, { logger }, (change) => {
    const parsed = parseConfigKey(change.key);
    if (parsed?.kind !== 'service') return;
    if (change.operation !== 'PUT') {
      coordinator.deleteService(parsed.tenant, parsed.service, now());
    } else {
      const record = parseJson(change.value, (value) => serviceRecord.safeParse(value));
      if (record === undefined || record.tenant !== parsed.tenant || record.name !== parsed.service) {
        dropped.inc({ kind: 'service_record', reason: 'schema' });
        logger.warn({ key: change.key }, 'ignored a service record that fails its schema');
        return;
      }
      coordinator.applyService(record, now());
    }
    onChange();
  });
  const endpointSets = await consumeStream(
    options.nc,
    'endpoints',
    { stream: streams.endpoints.name, pattern: subjectPattern('endpoints'), replay: { from: 'last_per_subject' } },
    { logger, registry: options.registry },
    ({ payload, subject }) => {
      if (generationFromFuture(payload, now())) {
        dropped.inc({ kind: 'endpoints', reason: 'from_future' });
        logger.warn({ subject, generation: payload.generation }, 'dropped endpoint set: its generation is too far ahead of the clock');
        return;
      }
      if (coordinator.applyEndpointSet(payload, now())) onChange();
    },
  );
  const followers = [services, endpointSets, ...(published === undefined ? [] : [published])];

  // Assignments wait for the fleet too: every replica's Envoys, not only this one's.
  const loaded = Promise.all([services.caughtUp, endpointSets.caughtUp, replication?.start()]).then(() => {
    hds.markReady();
    logger.info({ endpoints: coordinator.catalog.size }, 'health-check state loaded; serving HDS assignments');
  });
  const tick = setInterval(
    () => {
      for (const transition of coordinator.tick(now())) publisher.submit(transition);
      metrics.endpointsChecked.set(coordinator.catalog.size);
      metrics.unassignedEndpoints.set(coordinator.assigner.unassignedCount());
    },
    Math.min(1000, options.reportIntervalMs),
  );
  return {
    coordinator,
    hds,
    publisher,
    replication,
    loaded,
    stop: async () => {
      clearInterval(tick);
      await replication?.stop();
      hds.close();
      publisher.stop();
      await Promise.all(followers.map((f) => f.stop()));
    },
  };
}

/**
 * Reads the last published transition of every endpoint, so transitions after a restart name
 * the right previous state; with `follow`, keeps reading (the follower is returned).
 */
async function recoverPublishedStates(
  nc: NatsConnection,
  coordinator: HealthCoordinator,
  logger: Logger,
  registry: Registry,
  follow: boolean,
): Promise<StreamFollower | undefined> {
  let recovered = 0;
  const reader = await consumeStream(
    nc,
    'health',
    { stream: streams.health.name, pattern: subjectPattern('health'), replay: { from: 'all' } },
    { logger, registry },
    ({ payload }) => {
      coordinator.recoverState(payload);
      recovered++;
    },
  );
  await reader.caughtUp;
  if (recovered > 0) logger.info({ transitions: recovered }, 'recovered published health states');
  if (follow) return reader;
  await reader.stop();
  return undefined;
}
