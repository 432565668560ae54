import type { Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Snapshot } from '../src/resources.js';
import { listenGrpcShared } from '@switchyard/shared';
import { XdsCache, registerXdsServices, startXdsWorkers, type XdsServer } from '../src/xds/index.js';

/** Switchyard's xDS engine on a gRPC server of its own, as the benchmarks run it. */

const silent = pino({ level: 'silent' });

export interface Engine {
  cache: XdsCache;
  xds: XdsServer;
  server: grpc.Server;
  port: number;
}

function bind(server: grpc.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
}

/** With `workers` > 0, that many xDS worker processes take turns with this one in serving connections (XDS_WORKERS). */
export async function startEngine(port: number, snapshot: Snapshot, workers = 0): Promise<Engine> {
  const cache = new XdsCache();
  cache.setSnapshot(snapshot);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const deps = { logger: silent, registry: new Registry() };
  if (workers === 0) return { cache, xds: registerXdsServices(server, cache, deps), server, port: await bind(server, port) };
  const pool = startXdsWorkers(server, cache, deps, {
    count: workers,
    settings: {
      security: { mode: 'plaintext' },
      peersAuthenticated: false,
      edgeIdentities: [],
      maxStreamAgeMs: undefined,
      logLevel: 'silent',
    },
  });
  await pool.ready();
  const listener: NetServer = await listenGrpcShared(server, grpc.ServerCredentials.createInsecure(), '127.0.0.1', port, pool.take);
  return { cache, xds: pool.server, server, port: (listener.address() as { port: number }).port };
}
