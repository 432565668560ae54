import * as grpc from '@grpc/grpc-js';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import {
  buckets,
  decodeMessage,
  dnsLabel,
  followBucket,
  messageCounters,
  openStreamReader,
  parseSubject,
  withConsumerSpan,
  streams,
  subjectPattern,
  type KV,
  type Logger,
  type NatsConnection,
  type ReplayFrom,
  type StreamFollower,
  type StreamReader,
} from '@switchyard/shared';
import { authenticate, type Principal } from './auth.js';
import type { WatchedEvent } from './event-format.js';
import type { EventStreamerMetrics } from './metrics.js';

/**
 * The Watch API (`switchyard.watch.v1.WatchService/Watch`): replays the retained service
 * status events of a scope from JetStream, says `caught_up`, then streams new ones. Each kind
 * is read by its own ordered consumer (nats-server 2.9 allows one filter per consumer); the
 * replay is merged across kinds in the order JetStream stored the events. Memory per watcher
 * is bounded: a consumer pulls only when the previous events were written, and a watcher whose
 * stream stays blocked longer than `slowWatcherMs` is ended with RESOURCE_EXHAUSTED.
 */

export const watchKinds = ['status', 'deploy', 'scale', 'instance', 'health', 'envoy', 'xds'] as const;
export type WatchKind = (typeof watchKinds)[number];

export interface WatchRequest {
  tenant?: string;
  service?: string;
  kinds?: string[];
  start?: 'START_BEGINNING' | 'START_NOW';
  after?: Record<string, string | number>;
}

/** An event as sent: the payload travels as JSON text. */
type WatchEventMessage = Omit<WatchedEvent, 'payload'> & { payload_json: string };

type WatchCall = grpc.ServerWritableStream<WatchRequest, { event?: WatchEventMessage; caught_up?: Record<string, never> }>;

export interface WatchServerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  kv: KV;
  adminToken: string | undefined;
  metrics: EventStreamerMetrics;
  registry: Registry;
  logger: Logger;
  /** How long a watcher's stream may stay blocked before it is dropped. */
  slowWatcherMs: number;
  /** Events each consumer pulls ahead (the per-kind buffer bound). */
  pullBatch?: number;
}

interface Scope {
  tenant: string | undefined;
  service: string | undefined;
  kinds: WatchKind[];
}

/** Validates a request against the caller's rights; returns the scope or the status to end with. */
export function resolveScope(
  request: WatchRequest,
  principal: Principal,
): { ok: true; scope: Scope } | { ok: false; status: grpc.status; details: string } {
  const tenant = request.tenant || (principal.admin ? undefined : principal.tenant);
  const service = request.service || undefined;
  for (const [name, value] of [
    ['tenant', tenant],
    ['service', service],
  ] as const) {
    if (value !== undefined && !dnsLabel.safeParse(value).success) return invalid(`${name} "${value}" is not a DNS label`);
  }
  if (service !== undefined && tenant === undefined) return invalid('service needs tenant');
  if (!principal.admin && tenant !== principal.tenant) {
    return { ok: false, status: grpc.status.PERMISSION_DENIED, details: `this token may only watch tenant "${principal.tenant}"` };
  }
  const asked = request.kinds ?? [];
  const unknown = asked.filter((k) => !(watchKinds as readonly string[]).includes(k));
  if (unknown.length > 0) return invalid(`unknown kinds ${unknown.join(', ')}; known: ${watchKinds.join(', ')}`);
  for (const kind of Object.keys(request.after ?? {})) {
    if (!(watchKinds as readonly string[]).includes(kind)) return invalid(`after names unknown kind ${kind}`);
  }
  // xds events belong to no tenant: only an unscoped watch sees them.
  if (tenant !== undefined && asked.includes('xds')) return invalid('xds events have no tenant; watch them without tenant');
  const kinds = (asked.length > 0 ? (asked as WatchKind[]) : [...watchKinds]).filter((k) => tenant === undefined || k !== 'xds');
  return { ok: true, scope: { tenant, service, kinds: [...new Set(kinds)] } };
}

function invalid(details: string) {
  return { ok: false as const, status: grpc.status.INVALID_ARGUMENT, details };
}

export class WatchServer {
  private readonly watchers = new Set<Watcher>();
  private tokenFollower: StreamFollower | undefined;

  constructor(private readonly deps: WatchServerDeps) {}

  implementation(): grpc.UntypedServiceImplementation {
    return { Watch: (call: WatchCall) => void this.onWatch(call) };
  }

  /** Ends the watches of tokens that are deleted or changed, as soon as the KV says so. */
  async followTokenChanges(): Promise<void> {
    const prefix = 'tokens.';
    this.tokenFollower = await followBucket(
      this.deps.nc,
      buckets.config,
      { key: `${prefix}>`, replay: { from: 'new' } },
      this.deps,
      (change) => {
        const tokenHash = change.key.slice(prefix.length);
        for (const watcher of this.watchers) {
          if (watcher.tokenHash === tokenHash) void watcher.end(grpc.status.UNAUTHENTICATED, 'token revoked or changed', 'revoked');
        }
      },
    );
  }

  async close(): Promise<void> {
    await this.tokenFollower?.stop();
    await Promise.all([...this.watchers].map((w) => w.end(grpc.status.UNAVAILABLE, 'event-streamer shutting down', 'shutdown')));
  }

  private async onWatch(call: WatchCall): Promise<void> {
    const { metrics, logger } = this.deps;
    let auth;
    try {
      auth = await authenticate(call.metadata, { kv: this.deps.kv, adminToken: this.deps.adminToken });
    } catch (err) {
      logger.error({ err }, 'token lookup failed');
      metrics.watchersEnded.inc({ reason: 'error' });
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'cannot check the token now; retry' });
      return;
    }
    if (!auth.ok) {
      metrics.watchersEnded.inc({ reason: 'unauthenticated' });
      call.emit('error', auth.status);
      return;
    }
    const resolved = resolveScope(call.request, auth.principal);
    if (!resolved.ok) {
      metrics.watchersEnded.inc({ reason: resolved.status === grpc.status.PERMISSION_DENIED ? 'permission_denied' : 'invalid' });
      call.emit('error', { code: resolved.status, details: resolved.details });
      return;
    }
    const watcher = new Watcher(call, resolved.scope, auth.tokenHash, this.deps);
    this.watchers.add(watcher);
    metrics.watchers.set(this.watchers.size);
    try {
      await watcher.run(call.request);
    } catch (err) {
      logger.error({ err }, 'watch failed');
      await watcher.end(grpc.status.UNAVAILABLE, 'the event stream failed', 'error');
    } finally {
      await watcher.finished;
      this.watchers.delete(watcher);
      metrics.watchers.set(this.watchers.size);
    }
  }
}

interface Source {
  kind: WatchKind;
  reader: StreamReader;
  iterator: AsyncIterator<JsMsg>;
  delivered: number;
  replayed: boolean;
}

class Watcher {
  private sources: Source[] = [];
  private closed = false;
  private readonly positions: Partial<Record<WatchKind, number>> = {};
  private finish!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.finish = resolve));
  private readonly dropped;

  constructor(
    private readonly call: WatchCall,
    private readonly scope: Scope,
    readonly tokenHash: string,
    private readonly deps: WatchServerDeps,
  ) {
    this.dropped = messageCounters(deps.registry).dropped;
    call.on('cancelled', () => void this.end(undefined, 'client cancelled', 'cancelled'));
    call.on('error', () => void this.end(undefined, 'stream error', 'cancelled'));
  }

  async run(request: WatchRequest): Promise<void> {
    for (const kind of this.scope.kinds) {
      const after = request.after?.[kind];
      const replay: ReplayFrom =
        after !== undefined
          ? { from: 'sequence', sequence: Number(after) + 1 }
          : request.start === 'START_NOW'
            ? { from: 'new' }
            : { from: 'all' };
      const reader = await openStreamReader(this.deps.js, {
        stream: kind === 'health' ? streams.health.name : streams.events.name,
        filter: subjectPattern(kind, {
          ...(this.scope.tenant ? { tenant: this.scope.tenant } : {}),
          ...(this.scope.service ? { service: this.scope.service } : {}),
        }),
        replay,
        maxMessages: this.deps.pullBatch ?? 64,
      });
      this.sources.push({ kind, reader, iterator: reader.messages[Symbol.asyncIterator](), delivered: 0, replayed: reader.backlog === 0 });
      if (this.closed) break;
    }
    if (this.closed) {
      await this.stopReaders();
      return;
    }
    await this.replay();
    if (this.closed) return;
    if (!(await this.write({ caught_up: {} }))) return;
    await Promise.all(this.sources.map((source) => this.follow(source)));
  }

  /** Ends the watch with a status (or, if the client is already gone, just cleans up). */
  async end(code: grpc.status | undefined, details: string, reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (reason !== 'cancelled') this.deps.metrics.watchersEnded.inc({ reason });
    if (code !== undefined) {
      const resume = JSON.stringify(this.positions);
      this.call.emit('error', { code, details: `${details}; resume with after=${resume}` });
    }
    await this.stopReaders();
  }

  private async stopReaders(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.reader.stop().catch(() => undefined)));
    this.finish();
  }

  /** Emits every retained event, merged across kinds in the order JetStream stored them. */
  private async replay(): Promise<void> {
    const heads = new Map<Source, JsMsg>();
    const pull = async (source: Source) => {
      if (source.replayed) return;
      const next = await source.iterator.next();
      if (next.done) source.replayed = true;
      else heads.set(source, next.value);
    };
    await Promise.all(this.sources.map(pull));
    while (heads.size > 0 && !this.closed) {
      let first: [Source, JsMsg] | undefined;
      for (const entry of heads) if (first === undefined || storedBefore(entry[1], first[1])) first = entry;
      const [source, msg] = first as [Source, JsMsg];
      heads.delete(source);
      source.delivered++;
      if (msg.info.pending === 0 || source.delivered >= source.reader.backlog) source.replayed = true;
      if (!(await this.emit(source, msg))) return;
      await pull(source);
    }
  }

  private async follow(source: Source): Promise<void> {
    while (!this.closed) {
      const next = await source.iterator.next();
      if (next.done || !(await this.emit(source, next.value))) return;
    }
  }

  private async emit(source: Source, msg: JsMsg): Promise<boolean> {
    if (this.closed) return false;
    const parsed = parseSubject(msg.subject);
    const decoded = parsed === undefined ? undefined : decodeMessage(parsed.kind, msg, this.deps.logger, this.dropped);
    if (parsed === undefined || decoded === undefined) return true;
    const payload = decoded.payload as { ts?: number };
    this.positions[source.kind] = msg.seq;
    // The write to the watcher continues the publisher's trace, like every other consumer.
    const written = await withConsumerSpan(msg.subject, decoded.trace, () =>
      this.write({
        event: {
          kind: source.kind,
          stream: msg.info.stream,
          sequence: msg.seq,
          subject: msg.subject,
          tenant: parsed.tenant ?? '',
          service: parsed.service ?? '',
          revision: parsed.revision ?? '',
          ts: payload.ts ?? Math.floor(msg.info.timestampNanos / 1e6),
          payload_json: JSON.stringify(decoded.payload),
        },
      }),
    );
    if (written) this.deps.metrics.watchEventsSent.inc();
    return written;
  }

  /** Writes one response; waits for the client to read if its buffer is full, dropping it if that takes too long. */
  private async write(response: Parameters<WatchCall['write']>[0]): Promise<boolean> {
    if (this.closed) return false;
    if (this.call.write(response)) return true;
    const drained = await new Promise<boolean>((resolve) => {
      const onDrain = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.call.off('drain', onDrain);
        resolve(false);
      }, this.deps.slowWatcherMs);
      this.call.once('drain', onDrain);
    });
    if (drained) return !this.closed;
    await this.end(grpc.status.RESOURCE_EXHAUSTED, `watcher too slow: its stream stayed full for ${this.deps.slowWatcherMs} ms`, 'slow');
    return false;
  }
}

/** JetStream storage order: the time the server stored the message, then its sequence. */
function storedBefore(a: JsMsg, b: JsMsg): boolean {
  const ta = a.info.timestampNanos;
  const tb = b.info.timestampNanos;
  return ta < tb || (ta === tb && a.seq < b.seq);
}
