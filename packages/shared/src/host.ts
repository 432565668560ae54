import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from '@nats-io/nats-core';
import { createLogger, type Logger } from './logger.js';
import { createObservability, startAdminServer, type Observability } from './observability.js';
import { connectNats } from './nats.js';
import { startTracing, stopTracing } from './tracing.js';
import { ConfigError, loadConfig } from './config.js';
import type { z } from 'zod';

/** What a service module gets from its host: shared plumbing, never business state. */
export interface Runtime {
  logger: Logger;
  nc: NatsConnection;
  observability: Observability;
  /** Envoy-facing services add themselves here; the host binds it once all are added. */
  grpcServer: grpc.Server;
  /** The address the host's gRPC server listens on once bound (e.g. for LRS `self`). */
  grpcPort: () => number;
}

export interface ServiceHandle {
  /** Extra admin routes (e.g. /v1/nodes). */
  adminRoutes?: (app: FastifyInstance) => void;
  stop(): Promise<void>;
}

export interface ServiceModule {
  name: string;
  start(runtime: Runtime): Promise<ServiceHandle>;
}

export interface HostOptions {
  /** "control-plane", or "all-in-one" when several services share the process. */
  name: string;
  services: ServiceModule[];
  natsUrl: string;
  grpcPort?: number;
  adminPort: number;
  logLevel: string;
  otlpEndpoint: string | undefined;
  grpcOptions?: grpc.ServerOptions;
}

export interface Host {
  runtime: Runtime;
  admin: FastifyInstance;
  grpcPort: number;
  stop(): Promise<void>;
}

/**
 * Starts services in one process: one NATS connection, one gRPC server (so LRS shares the
 * xDS port in all-in-one mode), one admin server. Ready once every service has loaded its
 * state and the servers listen.
 */
export async function startHost(options: HostOptions): Promise<Host> {
  startTracing(`switchyard-${options.name}`, options.otlpEndpoint);
  const logger = createLogger(options.name, options.logLevel);
  const observability = createObservability(options.name);
  const grpcListening = observability.readiness.require('grpc-listening');
  const nc = await connectNats({ servers: options.natsUrl, name: `switchyard-${options.name}`, logger, observability });
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, ...options.grpcOptions });
  let boundPort = 0;
  const runtime: Runtime = { logger, nc, observability, grpcServer, grpcPort: () => boundPort };
  const handles: ServiceHandle[] = [];
  for (const service of options.services) {
    handles.push(await service.start({ ...runtime, logger: logger.child({ component: service.name }) }));
  }
  if (options.grpcPort !== undefined) {
    boundPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(`0.0.0.0:${options.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    logger.info({ port: boundPort }, 'gRPC server listening');
  }
  grpcListening();
  const admin = await startAdminServer({
    port: options.adminPort,
    observability,
    extend: (app) => handles.forEach((h) => h.adminRoutes?.(app)),
  });
  logger.info({ port: options.adminPort }, 'admin server listening');
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      for (const handle of [...handles].reverse()) {
        await handle.stop().catch((err: unknown) => logger.error({ err }, 'service stop failed'));
      }
      // Clients reconnect as soon as a service ends their streams (an Envoy or grpc-js-xds client
      // reopens ADS/LRS on the same connection), so a graceful shutdown alone can wait forever.
      const shutDown = new Promise<'done'>((resolve) => grpcServer.tryShutdown(() => resolve('done')));
      const late = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 3000).unref());
      if ((await Promise.race([shutDown, late])) === 'timeout') {
        logger.warn('gRPC streams still open 3 s after the services stopped; closing them');
        grpcServer.forceShutdown();
      }
      await admin.close();
      // Draining needs the server; when NATS is down, close instead of waiting for it.
      const drained = nc.drain().catch(() => undefined);
      const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
      if ((await Promise.race([drained, timedOut])) === 'timeout') await nc.close().catch(() => undefined);
      await stopTracing();
    })());
  return { runtime, admin, grpcPort: boundPort, stop };
}

/** Runs a host until SIGTERM/SIGINT, then drains and exits. */
export function stopOnSignals(host: Pick<Host, 'stop'>, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    host.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

/**
 * A service's standalone `main`: reads its env config (a bad variable exits 2 with one message
 * listing every problem), starts the host and stops it on SIGTERM/SIGINT.
 */
export async function runStandalone<C extends { NATS_URL: string; LOG_LEVEL: string; OTEL_EXPORTER_OTLP_ENDPOINT: string | undefined }>(
  schema: z.ZodType<C>,
  plan: (config: C) => Pick<HostOptions, 'name' | 'services' | 'grpcPort' | 'adminPort'>,
): Promise<Host> {
  let config: C;
  try {
    config = loadConfig(schema);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(2);
  }
  const host = await startHost({
    ...plan(config),
    natsUrl: config.NATS_URL,
    logLevel: config.LOG_LEVEL,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  stopOnSignals(host, host.runtime.logger);
  return host;
}
