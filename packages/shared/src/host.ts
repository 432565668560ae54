import { createServer, type Server as NetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from '@nats-io/nats-core';
import { createLogger, type Logger } from './logger.js';
import { createObservability, startAdminServer, type Observability } from './observability.js';
import { connectNats, type NatsCredentials } from './nats.js';
import { busIdentities, type BusIdentity } from './bus-permissions.js';
import { startTracing, stopTracing } from './tracing.js';
import {
  ConfigError,
  grpcSecurityOf,
  loadConfig,
  natsCredentialsOf,
  type GrpcSecurity,
  type GrpcTlsConfig,
  type NatsAuthConfig,
} from './config.js';
import { grpcServerCredentials } from './grpc-tls.js';
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
  /** Where the host's servers listen; services with servers of their own bind there too. */
  bindHost: string;
  /** True when the gRPC port requires a verified client certificate (mutual TLS). */
  grpcPeersAuthenticated: boolean;
  /** How the gRPC port is secured (worker processes serving part of its connections need the same). */
  grpcSecurity: GrpcSecurity;
  /**
   * Lets the service take a share of the gRPC port's connections before grpcServer sees them
   * (`take` returns true for a connection it serves elsewhere, e.g. in an xDS worker process).
   * Undefined when the host runs several services: a connection carries calls to all of them.
   */
  shareGrpcConnections?: (take: ConnectionTaker) => void;
}

/** Takes a connection not yet read from, or returns false to leave it to the host's gRPC server. */
export type ConnectionTaker = (socket: Socket) => boolean;

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
  /**
   * A service's own NATS credentials, by service name: that service gets a connection of its
   * own as that identity. Services without credentials share one anonymous connection.
   */
  natsCredentials?: (service: string) => NatsCredentials | undefined;
  grpcPort?: number;
  adminPort: number;
  logLevel: string;
  otlpEndpoint: string | undefined;
  grpcOptions?: grpc.ServerOptions;
  /**
   * The address every port binds (default 127.0.0.1: the all-in-one serves local processes
   * only; standalone services in a cluster bind 0.0.0.0).
   */
  bindHost?: string;
  /** TLS of the gRPC port (default plaintext, which is warned about unless bound to loopback). */
  grpcSecurity?: GrpcSecurity;
}

export interface Host {
  runtime: Runtime;
  admin: FastifyInstance;
  grpcPort: number;
  /** The address the ports are bound to. */
  bindHost: string;
  stop(): Promise<void>;
}

/**
 * Starts services in one process: one NATS connection, one gRPC server (so LRS shares the
 * xDS port in all-in-one mode), one admin server. Ready once every service has loaded its
 * state and the servers listen.
 */
export async function startHost(options: HostOptions): Promise<Host> {
  const security = options.grpcSecurity ?? { mode: 'plaintext' };
  // Bad TLS files fail here, before anything has started.
  const credentials = grpcServerCredentials(security);
  startTracing(`switchyard-${options.name}`, options.otlpEndpoint);
  const logger = createLogger(options.name, options.logLevel);
  const observability = createObservability(options.name);
  const grpcListening = observability.readiness.require('grpc-listening');
  const connections = await connectServices(options, logger, observability);
  const nc = connections.shared ?? connections.own.values().next().value!;
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, ...options.grpcOptions });
  let boundPort = 0;
  const bindHost = options.bindHost ?? '127.0.0.1';
  let taker: ConnectionTaker | undefined;
  let shared: NetServer | undefined;
  const runtime: Runtime = {
    logger,
    nc,
    observability,
    grpcServer,
    grpcPort: () => boundPort,
    bindHost,
    grpcPeersAuthenticated: security.mode === 'mtls',
    grpcSecurity: security,
    ...(options.services.length === 1 ? { shareGrpcConnections: (take: ConnectionTaker) => (taker = take) } : {}),
  };
  const handles: ServiceHandle[] = [];
  for (const service of options.services) {
    const own = connections.own.get(service.name);
    handles.push(await service.start({ ...runtime, ...(own ? { nc: own } : {}), logger: logger.child({ component: service.name }) }));
  }
  if (options.grpcPort !== undefined) {
    if (taker === undefined) {
      boundPort = await new Promise<number>((resolve, reject) =>
        grpcServer.bindAsync(`${bindHost}:${options.grpcPort}`, credentials, (err, port) => (err ? reject(err) : resolve(port))),
      );
    } else {
      shared = await listenGrpcShared(grpcServer, credentials, bindHost, options.grpcPort, taker);
      boundPort = (shared.address() as { port: number }).port;
    }
    logger.info({ host: bindHost, port: boundPort, tls: security.mode }, 'gRPC server listening');
    if (security.mode === 'plaintext' && !isLoopback(bindHost)) {
      logger.warn(
        { host: bindHost, port: boundPort },
        'the gRPC port serves xDS without TLS beyond loopback (XDS_INSECURE): anyone who reaches it gets every tenant’s config and TLS keys',
      );
    }
  }
  grpcListening();
  const admin = await startAdminServer({
    port: options.adminPort,
    host: bindHost,
    observability,
    extend: (app) => handles.forEach((h) => h.adminRoutes?.(app)),
  });
  logger.info({ host: bindHost, port: options.adminPort }, 'admin server listening');
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      for (const handle of [...handles].reverse()) {
        await handle.stop().catch((err: unknown) => logger.error({ err }, 'service stop failed'));
      }
      // Clients reconnect as soon as a service ends their streams (an Envoy or grpc-js-xds client
      // reopens ADS/LRS on the same connection), so a graceful shutdown alone can wait forever.
      shared?.close();
      const shutDown = new Promise<'done'>((resolve) => grpcServer.tryShutdown(() => resolve('done')));
      const late = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 3000).unref());
      if ((await Promise.race([shutDown, late])) === 'timeout') {
        logger.warn('gRPC streams still open 3 s after the services stopped; closing them');
        grpcServer.forceShutdown();
      }
      await admin.close();
      await Promise.all(connections.all().map(drainOrClose));
      await stopTracing();
    })());
  return { runtime, admin, grpcPort: boundPort, bindHost, stop };
}

interface ServiceConnections {
  /** The anonymous connection services without credentials share (none if every service has its own). */
  shared: NatsConnection | undefined;
  own: Map<string, NatsConnection>;
  all(): NatsConnection[];
}

async function connectServices(options: HostOptions, logger: Logger, observability: Observability): Promise<ServiceConnections> {
  const own = new Map<string, NatsConnection>();
  let shared: NatsConnection | undefined;
  for (const service of options.services) {
    const credentials = options.natsCredentials?.(service.name);
    if (credentials === undefined) continue;
    const identity = (busIdentities as readonly string[]).includes(service.name) ? (service.name as BusIdentity) : undefined;
    const name = `switchyard-${options.name === service.name ? service.name : `${options.name}-${service.name}`}`;
    own.set(service.name, await connectNats({ servers: options.natsUrl, name, logger, observability, credentials, identity }));
  }
  if (own.size < options.services.length || own.size === 0) {
    logger.warn('connecting to NATS without credentials: a server that enforces permissions refuses this connection');
    shared = await connectNats({ servers: options.natsUrl, name: `switchyard-${options.name}`, logger, observability });
  }
  return { shared, own, all: () => [...(shared ? [shared] : []), ...own.values()] };
}

/** Draining needs the server; when NATS is down, close instead of waiting for it. */
async function drainOrClose(nc: NatsConnection): Promise<void> {
  const drained = nc.drain().catch(() => undefined);
  const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
  if ((await Promise.race([drained, timedOut])) === 'timeout') await nc.close().catch(() => undefined);
}

/**
 * The gRPC port as a plain TCP listener: each connection goes to `take` first, unread (so it
 * can be handed to another process), and otherwise to the gRPC server with the port's credentials.
 */
export function listenGrpcShared(
  grpcServer: grpc.Server,
  credentials: grpc.ServerCredentials,
  host: string,
  port: number,
  take: ConnectionTaker,
): Promise<NetServer> {
  const injector = grpcServer.createConnectionInjector(credentials);
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    if (take(socket)) return;
    injector.injectConnection(socket);
    socket.resume();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
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
 * listing every problem), starts the host on every interface and stops it on SIGTERM/SIGINT.
 * A gRPC port serves mutual TLS (XDS_TLS_*) unless XDS_INSECURE=true says otherwise.
 */
export async function runStandalone<
  C extends { NATS_URL: string; LOG_LEVEL: string; OTEL_EXPORTER_OTLP_ENDPOINT: string | undefined } & Partial<GrpcTlsConfig> &
    NatsAuthConfig,
>(schema: z.ZodType<C>, plan: (config: C) => Pick<HostOptions, 'name' | 'services' | 'grpcPort' | 'adminPort'>): Promise<Host> {
  let config: C;
  let planned: ReturnType<typeof plan>;
  let grpcSecurity: GrpcSecurity | undefined;
  let natsCredentials: NatsCredentials | undefined;
  try {
    config = loadConfig(schema);
    planned = plan(config);
    if (planned.grpcPort !== undefined) grpcSecurity = grpcSecurityOf(config);
    natsCredentials = natsCredentialsOf(config, planned.name);
  } catch (err) {
    exitOnConfigError(err);
  }
  const host = await startHost({
    ...planned,
    natsUrl: config.NATS_URL,
    natsCredentials: () => natsCredentials,
    logLevel: config.LOG_LEVEL,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    bindHost: '0.0.0.0',
    grpcSecurity,
  }).catch((err: unknown) => exitOnConfigError(err));
  stopOnSignals(host, host.runtime.logger);
  return host;
}

function exitOnConfigError(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
