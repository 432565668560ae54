import type { Readable } from 'node:stream';
import { deserialize, serialize } from 'node:v8';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { GrpcSecurity, XdsEvent, XdsTypeUrl } from '@switchyard/shared';
import type { NodeGroup } from '../resources.js';
import { EncodedResource } from './encoding.js';
import type { ResourceBatch } from './cache.js';
import type { NodeStatus } from './node-status.js';

/**
 * Messages between the control plane and its xDS worker processes (structured clone, so
 * encoded bytes cross as bytes). The control plane owns the cache and encodes each resource
 * version once; a worker applies the encoded resources to its replica and serves the
 * connections it is handed.
 *
 * Two channels: client connections go over Node IPC (the only way to pass a socket), and
 * everything else the control plane says over a pipe of its own (`controlFd`). Node sends
 * nothing on an IPC channel after a socket until the other side has acknowledged that
 * socket, so during a reconnect storm an EDS change sent over IPC would wait behind thousands
 * of connections being handed over, one round trip each.
 */

/** What a worker needs to serve like the control plane does. */
export interface WorkerSettings {
  security: GrpcSecurity;
  peersAuthenticated: boolean;
  edgeIdentities: readonly string[];
  maxStreamAgeMs: number | undefined;
  logLevel: string;
}

/** One encoded resource as it crosses the process boundary. */
interface WireResource {
  name: string;
  version: string;
  any: Uint8Array;
  lanes: readonly [number, number, number, number];
}

export interface WireBatch {
  group: NodeGroup;
  typeUrl: XdsTypeUrl;
  upserts: WireResource[];
  removed: string[];
}

/** Over the control pipe. */
export type ToWorker =
  { kind: 'start'; settings: WorkerSettings } | { kind: 'changes'; batches: WireBatch[]; ready: boolean } | { kind: 'drop' };

/** Over IPC, with a socket: a client connection for this worker to serve. */
export interface ConnectionMessage {
  kind: 'connection';
}

/** The worker's file descriptor of the control pipe (after stdin, stdout, stderr and IPC). */
export const controlFd = 4;

/** One message on the control pipe: its length (4 bytes, big-endian), then its structured clone. */
export function controlFrame(message: ToWorker): Buffer {
  const body = serialize(message);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** Calls `onMessage` for each message read from the control pipe, in order. */
export function readControlFrames(input: Readable, onMessage: (message: ToWorker) => void): void {
  const chunks: Buffer[] = [];
  let buffered = 0;
  input.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (buffered < 4) return;
      if (chunks[0]!.length < 4) chunks.splice(0, chunks.length, Buffer.concat(chunks));
      const length = chunks[0]!.readUInt32BE(0);
      if (buffered < 4 + length) return;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const rest = all.subarray(4 + length);
      chunks.splice(0, chunks.length, ...(rest.length > 0 ? [rest] : []));
      buffered = rest.length;
      onMessage(deserialize(all.subarray(4, 4 + length)) as ToWorker);
    }
  });
}

/** What a worker's streams look like from outside, sent when it changed (at most every `statusIntervalMs`). */
export interface WorkerStatus {
  nodes: NodeStatus[];
  streams: number;
  bytesInFlight: number;
  settled: boolean;
  /** inSync[k]: streams in sync with at least k requested types (k = 0…5). */
  inSync: number[];
  /** The worker's xDS metrics (its registry as JSON), summed with the control plane's at scrape time. */
  metrics: MetricObjectWithValues<MetricValue<string>>[];
}

export type FromWorker = { kind: 'listening' } | { kind: 'event'; event: XdsEvent } | { kind: 'status'; status: WorkerStatus };

export const statusIntervalMs = 250;

export function toWire(batches: readonly ResourceBatch[]): WireBatch[] {
  return batches.map(({ group, typeUrl, resources }) => {
    const upserts: WireResource[] = [];
    const removed: string[] = [];
    for (const [name, r] of resources) {
      if (r === undefined) removed.push(name);
      else upserts.push({ name, version: r.version, any: r.any, lanes: r.lanes });
    }
    return { group, typeUrl, upserts, removed };
  });
}

/** A replica keeps neither the translator's object nor its JSON: it never diffs, it applies. */
const notKept = Object.freeze({});

export function fromWire(batches: readonly WireBatch[]): ResourceBatch[] {
  return batches.map(({ group, typeUrl, upserts, removed }) => {
    const resources = new Map<string, EncodedResource | undefined>();
    for (const r of upserts) resources.set(r.name, new EncodedResource(typeUrl, r.name, r.version, r.any, r.lanes, notKept, ''));
    for (const name of removed) resources.set(name, undefined);
    return { group, typeUrl, resources };
  });
}
