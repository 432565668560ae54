import { performance } from 'node:perf_hooks';

/** Messages between the benchmark's server process and its client process (Node IPC). */
export type ToClients = { kind: 'arm'; target: 'xds' | 'raw'; round: number } | { kind: 'storm'; cold: boolean } | { kind: 'stop' };

export type FromClients =
  | { kind: 'synced'; at: number; clients: number }
  | { kind: 'armed'; target: 'xds' | 'raw'; round: number }
  | { kind: 'received'; target: 'xds' | 'raw'; round: number; first: number; last: number }
  | { kind: 'stormArmed' }
  | { kind: 'stormDone'; at: number }
  | { kind: 'stats'; rssMb: number };

export type ToFloor = { kind: 'count' } | { kind: 'push'; round: number; bytes: string } | { kind: 'stop' };

export type FromFloor =
  | { kind: 'listening'; port: number }
  | { kind: 'counted'; streams: number; received: number }
  | { kind: 'pushed'; round: number; t0: number }
  | { kind: 'acked'; round: number }
  | { kind: 'stats'; rssMb: number };

export interface ClientProcessOptions {
  xdsPort: number;
  rawPort: number;
  clients: number;
  clusters: number;
  /** 'names': every client subscribes to EDS by listing all cluster names, as Envoy does. */
  edsSubscription: 'names' | 'wildcard';
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export function clusterNameOf(i: number): string {
  return `c${String(i).padStart(5, '0')}`;
}

/** Path of the bare bidi method used as the transport floor. */
export const rawPath = '/bench.Raw/Stream';
export const adsPath = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

const identity = (b: Buffer) => b;

/** A bidi method named `Stream` at `path` whose messages are raw bytes (no (de)serializing). */
export function bytesBidi(path: string) {
  return {
    Stream: {
      path,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
}
