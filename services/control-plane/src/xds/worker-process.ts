import { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createLogger, grpcServerCredentials } from '@switchyard/shared';
import { xdsAccess } from './access.js';
import { XdsCache } from './cache.js';
import { registerXdsServices, type XdsServer } from './server.js';
import {
  controlFd,
  fromWire,
  readControlFrames,
  statusIntervalMs,
  type ConnectionMessage,
  type FromWorker,
  type ToWorker,
  type WorkerSettings,
  type WorkerStatus,
} from './worker-protocol.js';

/**
 * An xDS worker process (see workers.ts): a replica of the control plane's cache, fed the
 * encoded resources over IPC, and the xDS services on a gRPC server that takes its
 * connections from the control plane (never listens itself). Ends when the control plane does.
 */

// A failed send means the control plane is gone; 'disconnect' below ends this process.
const send = (message: FromWorker) => process.send?.(message, undefined, {}, () => undefined);
const heartbeatTicks = Math.round(1000 / statusIntervalMs);

interface Worker {
  cache: XdsCache;
  xds: XdsServer;
  markChanged(): void;
  inject(socket: Socket): void;
}

function start(settings: WorkerSettings): Worker {
  const logger = createLogger('control-plane', settings.logLevel).child({ component: 'xds', worker: process.pid });
  const cache = new XdsCache();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const registry = new Registry();
  let changed = true;
  const xds = registerXdsServices(server, cache, {
    logger,
    registry,
    maxStreamAgeMs: settings.maxStreamAgeMs,
    typesFor: xdsAccess({ peersAuthenticated: settings.peersAuthenticated, edgeIdentities: settings.edgeIdentities }),
    onEvent: (event) => {
      changed = true;
      send({ kind: 'event', event });
    },
  });
  const injector = server.createConnectionInjector(grpcServerCredentials(settings.security));
  let ticks = 0;
  setInterval(() => {
    // Requests that change only metrics (a forbidden type, a stale nonce) raise no event: report every second anyway.
    if (!changed && xds.settled() && ++ticks % heartbeatTicks !== 0) return;
    changed = false;
    void statusOf(xds, registry).then((status) => send({ kind: 'status', status }));
  }, statusIntervalMs);
  const markChanged = () => (changed = true);
  return { cache, xds, markChanged, inject: (socket) => injector.injectConnection(socket) };
}

async function statusOf(xds: XdsServer, registry: Registry): Promise<WorkerStatus> {
  return {
    metrics: await registry.getMetricsAsJSON(),
    nodes: xds.nodes(),
    streams: xds.streamCount,
    bytesInFlight: xds.bytesInFlight,
    settled: xds.settled(),
    inSync: [0, 1, 2, 3, 4, 5].map((k) => xds.streamsInSync(k)),
  };
}

let worker: Worker | undefined;
readControlFrames(new Socket({ fd: controlFd, readable: true, writable: false }), (message: ToWorker) => {
  switch (message.kind) {
    case 'start':
      worker ??= start(message.settings);
      send({ kind: 'listening' });
      return;
    case 'changes':
      worker?.cache.applyChanges(fromWire(message.batches), message.ready);
      worker?.markChanged();
      return;
    case 'drop':
      worker?.xds.dropAllStreams();
      return;
  }
});
process.on('message', (message: ConnectionMessage, handle?: unknown) => {
  const socket = handle as Socket | undefined;
  if (message.kind !== 'connection' || socket === undefined) return;
  if (worker === undefined) socket.destroy();
  else {
    worker.inject(socket);
    worker.markChanged();
  }
});
// The control plane is gone (stopped or crashed): its clients reconnect to the next one.
process.on('disconnect', () => process.exit(0));
