import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Snapshot } from '../src/resources.js';
import { XdsCache, registerXdsServices, type XdsServer } from '../src/xds/index.js';

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

export async function startEngine(port: number, snapshot: Snapshot): Promise<Engine> {
  const cache = new XdsCache();
  cache.setSnapshot(snapshot);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const xds = registerXdsServices(server, cache, { logger: silent, registry: new Registry() });
  return { cache, xds, server, port: await bind(server, port) };
}
