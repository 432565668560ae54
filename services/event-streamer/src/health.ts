import type * as grpc from '@grpc/grpc-js';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import {
  buckets,
  decodeMessage,
  generationFromFuture,
  grpcService,
  loadGrpcPackage,
  messageCounters,
  parseConfigKey,
  protoFiles,
  publishDurable,
  serviceRecord,
  streams,
  type HealthTransition,
  type Logger,
} from '@switchyard/shared';
import { HealthCoordinator } from './coordinator.js';
import { HdsServer } from './hds.js';
import type { EventStreamerMetrics } from './metrics.js';
import { TransitionPublisher } from './publisher.js';
import { kvStream, kvSubject, openStreamReader, type StreamReader } from './stream-reader.js';

/**
 * Health checking through the Envoy fleet: loads what to check from NATS (service records
 * from the config KV, endpoint sets from their stream, last published states from the health
 * stream), serves HDS, and publishes transitions. HDS sends nothing until the state is loaded.
 */

export interface HealthCheckingOptions {
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
}

export interface HealthChecking {
  coordinator: HealthCoordinator;
  hds: HdsServer;
  publisher: TransitionPublisher;
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
  const hds = new HdsServer({
    coordinator,
    reportIntervalMs: options.reportIntervalMs,
    metrics,
    logger,
    now,
    onTransitions: (transitions) => transitions.forEach((t) => publisher.submit(t)),
  });
  const service = grpcService(loadGrpcPackage([protoFiles.hds]), 'envoy.service.health.v3.HealthDiscoveryService');
  options.grpcServer.addService(service.service, hds.implementation());

  await recoverPublishedStates(js, coordinator, logger, (msg) => decodeMessage('health', msg, logger, dropped)?.payload);

  const readers: StreamReader[] = [];
  const onChange = () => hds.scheduleFlush();
  const services = await openStreamReader(js, {
    stream: kvStream(buckets.config),
    filter: kvSubject(buckets.config, 'services.>'),
    replay: { from: 'last_per_subject' },
  });
  readers.push(services);
  const servicesLoaded = follow(services, logger, (msg) => {
    const key = msg.subject.slice(kvSubject(buckets.config, '').length);
    const parsed = parseConfigKey(key);
    if (parsed?.kind !== 'service') return;
    const operation = msg.headers?.get('KV-Operation');
    if (operation === 'DEL' || operation === 'PURGE') {
      coordinator.deleteService(parsed.tenant, parsed.service, now());
    } else {
      const record = parseJson(msg.data, (value) => serviceRecord.safeParse(value));
      if (record === undefined || record.tenant !== parsed.tenant || record.name !== parsed.service) {
        dropped.inc({ kind: 'service_record', reason: 'schema' });
        logger.warn({ key }, 'ignored a service record that fails its schema');
        return;
      }
      coordinator.applyService(record, now());
    }
    onChange();
  });
  const endpointSets = await openStreamReader(js, {
    stream: streams.endpoints.name,
    filter: 'switchyard.endpoints.>',
    replay: { from: 'last_per_subject' },
  });
  readers.push(endpointSets);
  const endpointsLoaded = follow(endpointSets, logger, (msg) => {
    const set = decodeMessage('endpoints', msg, logger, dropped)?.payload;
    if (set === undefined) return;
    if (generationFromFuture(set, now())) {
      dropped.inc({ kind: 'endpoints', reason: 'from_future' });
      logger.warn(
        { subject: msg.subject, generation: set.generation },
        'dropped endpoint set: its generation is too far ahead of the clock',
      );
      return;
    }
    if (coordinator.applyEndpointSet(set, now())) onChange();
  });

  const loaded = Promise.all([servicesLoaded, endpointsLoaded]).then(() => {
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
    loaded,
    stop: async () => {
      clearInterval(tick);
      hds.close();
      publisher.stop();
      await Promise.all(readers.map((r) => r.stop()));
    },
  };
}

/** Reads the last published transition of every endpoint, so transitions after a restart name the right previous state. */
async function recoverPublishedStates(
  js: JetStreamClient,
  coordinator: HealthCoordinator,
  logger: Logger,
  decode: (msg: JsMsg) => HealthTransition | undefined,
): Promise<void> {
  const reader = await openStreamReader(js, { stream: streams.health.name, filter: 'switchyard.health.>', replay: { from: 'all' } });
  let recovered = 0;
  try {
    await follow(reader, logger, (msg) => {
      const transition = decode(msg);
      if (transition === undefined) return;
      coordinator.recoverState(transition);
      recovered++;
    });
  } finally {
    await reader.stop();
  }
  if (recovered > 0) logger.info({ transitions: recovered }, 'recovered published health states');
}

/**
 * Feeds a reader's messages to a handler for as long as it runs; the returned promise resolves
 * once the replayed backlog has been handled. A handler that throws is logged, never fatal.
 */
function follow(reader: StreamReader, logger: Logger, handle: (msg: JsMsg) => void): Promise<void> {
  let caughtUp!: () => void;
  const loaded = new Promise<void>((resolve) => (caughtUp = resolve));
  if (reader.backlog === 0) caughtUp();
  void (async () => {
    let seen = 0;
    for await (const msg of reader.messages) {
      try {
        handle(msg);
      } catch (err) {
        logger.error({ err, subject: msg.subject }, 'failed to apply a message; skipped');
      }
      // Pending 0: nothing more was stored when this one was delivered (a safeguard should the count be off).
      if (++seen >= reader.backlog || msg.info.pending === 0) caughtUp();
    }
    caughtUp();
  })();
  return loaded;
}

function parseJson<T>(data: Uint8Array, check: (value: unknown) => { success: true; data: T } | { success: false }): T | undefined {
  try {
    const result = check(JSON.parse(new TextDecoder().decode(data)));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
