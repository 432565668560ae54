/**
 * activator: takes the requests of revisions that have no ready instance or too little spare
 * capacity for their target burst capacity (the control plane points their EDS at it), holds
 * them in a bounded queue per revision (src/queue.ts decides), pokes the autoscaler at once
 * with the held count, and forwards them to the revision's ready endpoints, at most
 * maxConcurrency at a time to each. One port takes HTTP/1.1 and HTTP/2 (h2c, gRPC) and
 * forwards with the protocol it received.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import {
  buckets,
  consumeStream,
  ensureStreams,
  openBucket,
  streams,
  subjectPattern,
  type ActivatorConfig,
  type Runtime,
  type ServiceHandle,
  type ServiceModule,
} from '@switchyard/shared';
import { Directory } from './directory.js';
import { Holding } from './holding.js';
import { activatorMetrics } from './metrics.js';
import { Poker } from './pokes.js';
import { createProxyListener } from './listener.js';
import { followServices } from './services.js';

export type ActivatorSettings = Pick<
  ActivatorConfig,
  | 'ACTIVATOR_PORT'
  | 'ACTIVATOR_REPLICA_ID'
  | 'ACTIVATOR_MAX_HELD'
  | 'ACTIVATOR_DEFAULT_TIMEOUT_MS'
  | 'ACTIVATOR_RETRY_AFTER_S'
  | 'ACTIVATOR_POKE_COALESCE_MS'
  | 'NATS_STREAM_REPLICAS'
>;

export interface ActivatorOptions {
  /** Called with the port the proxy listens on (ACTIVATOR_PORT 0 picks a free one). */
  onListening?: (port: number) => void;
}

export function createActivatorService(config: ActivatorSettings, options: ActivatorOptions = {}): ServiceModule {
  return { name: 'activator', start: (runtime) => startActivator(config, options, runtime) };
}

async function startActivator(config: ActivatorSettings, options: ActivatorOptions, runtime: Runtime): Promise<ServiceHandle> {
  const { nc, logger, observability } = runtime;
  const metrics = activatorMetrics(observability.registry);
  const replica = `${config.ACTIVATOR_REPLICA_ID ?? hostname()}#${process.pid}-${randomBytes(3).toString('hex')}`;
  const holding = new Holding(
    {
      maxHeld: config.ACTIVATOR_MAX_HELD,
      defaultTimeoutMs: config.ACTIVATOR_DEFAULT_TIMEOUT_MS,
      retryAfterSeconds: config.ACTIVATOR_RETRY_AFTER_S,
    },
    { heldChanged: (ref, held) => poker.heldChanged(ref, held) },
  );
  const poker = new Poker(nc, replica, metrics, logger, () => holding.held(), config.ACTIVATOR_POKE_COALESCE_MS);
  await ensureStreams(nc, { replicas: config.NATS_STREAM_REPLICAS, logger });
  const endpoints = await consumeStream(
    nc,
    'endpoints',
    { stream: streams.endpoints.name, pattern: subjectPattern('endpoints'), replay: { from: 'last_per_subject' } },
    { logger, registry: observability.registry },
    ({ payload }) => holding.onEndpoints(payload),
  );
  const directory = new Directory();
  await openBucket(nc, buckets.config, { replicas: config.NATS_STREAM_REPLICAS });
  const services = await followServices(nc, directory, logger);
  await Promise.all([endpoints.caughtUp, services.caughtUp]);
  const { server, close } = createProxyListener({ holding, directory, metrics, logger });
  // Where the host binds (127.0.0.1 in the all-in-one, every interface standalone).
  server.listen(config.ACTIVATOR_PORT, runtime.bindHost);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: runtime.bindHost, port, replica, maxHeld: config.ACTIVATOR_MAX_HELD }, 'activator listening');
  options.onListening?.(port);
  return {
    adminRoutes: (app) => {
      app.get('/v1/activator', async () => ({ replica, port, held: holding.held() }));
    },
    stop: async () => {
      holding.close();
      poker.stop();
      close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([endpoints.stop(), services.stop()]);
    },
  };
}
