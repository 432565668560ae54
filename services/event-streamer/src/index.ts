import { hostname } from 'node:os';
import {
  buckets,
  ensureStreams,
  grpcService,
  loadGrpcPackage,
  openBucket,
  protoFiles,
  publishDurable,
  type EventStreamerConfig,
  type ServiceModule,
} from '@switchyard/shared';
import { EnvoyEventSink } from './event-sink.js';
import { eventReportingImplementation } from './event-reporting.js';
import { startHealthChecking } from './health.js';
import { startLogTailing } from './log-tailing.js';
import { eventStreamerMetrics } from './metrics.js';
import { WatchServer } from './watch.js';

/**
 * The event-streamer: health checks delegated to the Envoy fleet over HDS, Envoy's
 * health-check and outlier events (EventReportingService or tailed log files), and the Watch
 * API. In all-in-one mode its gRPC services share the host's server (the control plane's :18000).
 */
export function createEventStreamerService(config: EventStreamerConfig): ServiceModule {
  return {
    name: 'event-streamer',
    async start(runtime) {
      const { nc, logger, observability, grpcServer } = runtime;
      const { registry } = observability;
      const metrics = eventStreamerMetrics(registry);
      const { js } = await ensureStreams(nc, { replicas: config.NATS_STREAM_REPLICAS, logger });
      const sink = new EnvoyEventSink({ publish: (event) => publishDurable(js, 'envoy', event), metrics, logger });
      const files = config.EVENT_TAIL_FILES.split(',')
        .map((f) => f.trim())
        .filter((f) => f !== '');
      const tailing =
        files.length > 0 ? startLogTailing({ files, sink, metrics, logger, node: config.EVENT_TAIL_NODE ?? null }) : undefined;
      if (config.EVENT_STREAMER_MODE === 'tailer') {
        if (tailing === undefined) logger.warn('tailer mode without EVENT_TAIL_FILES: nothing to do');
        return { stop: async () => tailing?.stop() };
      }

      const stateLoaded = observability.readiness.require('event-streamer-state');
      const kv = await openBucket(nc, buckets.config, { replicas: config.NATS_STREAM_REPLICAS, logger });
      const health = await startHealthChecking({
        nc,
        js,
        grpcServer,
        logger,
        registry,
        metrics,
        checkersPerEndpoint: config.HDS_CHECKERS_PER_ENDPOINT,
        reportIntervalMs: config.HDS_REPORT_INTERVAL_MS,
        ...(config.EVENT_STREAMER_REPLICATED
          ? {
              replication: {
                replica: config.EVENT_STREAMER_REPLICA_ID ?? defaultReplicaId(),
                heartbeatMs: config.EVENT_STREAMER_HEARTBEAT_MS,
                members: await openBucket(nc, buckets.eventStreamers, { history: 1, replicas: config.NATS_STREAM_REPLICAS }),
              },
            }
          : {}),
      });
      void health.loaded.then(stateLoaded);
      const eventReporting = grpcService(
        loadGrpcPackage([protoFiles.eventReporting]),
        'envoy.service.event_reporting.v3.EventReportingService',
      );
      grpcServer.addService(eventReporting.service, eventReportingImplementation({ sink, logger, now: Date.now }));
      const watch = new WatchServer({
        nc,
        js,
        kv,
        adminToken: config.SWITCHYARD_ADMIN_TOKEN,
        metrics,
        registry,
        logger,
        slowWatcherMs: config.WATCH_SLOW_WATCHER_MS,
      });
      await watch.followTokenChanges();
      const watchService = grpcService(loadGrpcPackage([protoFiles.watch]), 'switchyard.watch.v1.WatchService');
      grpcServer.addService(watchService.service, watch.implementation());

      const { coordinator } = health;
      observability.health.set('event-streamer', () => ({
        hdsStreams: health.hds.connected,
        ...(health.replication === undefined ? {} : { replica: health.replication.replica, replicas: health.replication.replicas.length }),
        endpointsChecked: coordinator.catalog.size,
        endpointsUnassigned: coordinator.assigner.unassignedCount(),
        transitionBacklog: health.publisher.backlog,
        tailedFiles: files.length,
      }));
      return {
        adminRoutes: (app) => {
          // Which Envoy checks how many endpoints: for operators checking the spread.
          app.get('/v1/health-checks', async () => ({
            checkersPerEndpoint: config.HDS_CHECKERS_PER_ENDPOINT,
            endpoints: coordinator.catalog.size,
            unassigned: coordinator.assigner.unassignedCount(),
            envoys: health.hds.nodes().map((node) => ({ node, endpoints: coordinator.assigner.endpointsOf(node).size })),
          }));
        },
        stop: async () => {
          await watch.close();
          await health.stop();
          await tailing?.stop();
          await sink.idle();
        },
      };
    },
  };
}

/** Host name and process id, as one subject token. */
function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 128);
}

export { HealthCoordinator, type EndpointResult } from './coordinator.js';
export { Assigner } from './assigner.js';
export { Aggregator } from './health-votes.js';
