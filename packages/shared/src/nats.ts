import { connect } from '@nats-io/transport-node';
import {
  errors as natsErrors,
  headers as natsHeaders,
  PermissionViolationError,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
// The error classes the client throws during a leader election are exported only here.
import { JetStreamApiError, JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Counter, type Registry } from 'prom-client';
import { SpanKind, trace } from '@opentelemetry/api';
import type { Logger } from './logger.js';
import type { Observability } from './observability.js';
import { injectTraceContext, extractTraceContext } from './tracing.js';
import { streams, subjectFor, subjectKinds, type PayloadOf, type SubjectKindName } from './messages.js';
import type { Context } from '@opentelemetry/api';
import { inboxPrefixOf, type BusIdentity } from './bus-permissions.js';

export type { NatsConnection, Msg, Subscription } from '@nats-io/nats-core';
export type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
export type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';

export interface NatsCredentials {
  user: string;
  password: string;
}

export interface NatsOptions {
  servers: string;
  name: string;
  logger: Logger;
  observability: Observability;
  /** User and password; without them the connection is anonymous (refused by a server that enforces permissions). */
  credentials?: NatsCredentials;
  /** The identity whose permissions the connection has: its replies arrive under that identity's own inbox prefix. */
  identity?: BusIdentity;
}

/** Connections of one process that are down right now, so the gauge says 1 only while all of them are up. */
const disconnected = new WeakMap<Observability, Set<string>>();

function trackConnected(observability: Observability, key: string, up: boolean): void {
  const down = disconnected.get(observability) ?? new Set<string>();
  disconnected.set(observability, down);
  if (up) down.delete(key);
  else down.add(key);
  observability.natsConnected.set(down.size === 0 ? 1 : 0);
}

/**
 * Connects to NATS and keeps reconnecting forever with jittered backoff: a NATS outage must
 * degrade a service (visible in /healthz and `switchyard_nats_connected`), never end it.
 * Permission violations the server reports are logged: they mean the permission table in
 * bus-permissions.ts and what the service does disagree.
 */
export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const { logger, observability } = options;
  const nc = await connect({
    servers: options.servers.split(','),
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 500,
    waitOnFirstConnect: true,
    pingInterval: 5000,
    maxPingOut: 2,
    ...(options.credentials ? { user: options.credentials.user, pass: options.credentials.password } : {}),
    ...(options.identity ? { inboxPrefix: inboxPrefixOf(options.identity) } : {}),
  });
  const healthKey = options.identity === undefined ? 'nats' : `nats:${options.identity}`;
  const refused = permissionDeniedCounter(observability.registry);
  let connected = true;
  let lastChange = Date.now();
  trackConnected(observability, healthKey, true);
  observability.health.set(healthKey, () => ({ connected, server: nc.getServer(), since: new Date(lastChange).toISOString() }));
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        connected = false;
        lastChange = Date.now();
        trackConnected(observability, healthKey, false);
        logger.warn({ server: status.server }, 'NATS disconnected; serving last known state while reconnecting');
      } else if (status.type === 'reconnect') {
        connected = true;
        lastChange = Date.now();
        trackConnected(observability, healthKey, true);
        logger.info({ server: status.server }, 'NATS reconnected');
      } else if (status.type === 'error' && status.error instanceof PermissionViolationError) {
        const { operation, subject } = status.error;
        refused.inc({ operation });
        logger.warn({ operation, subject, identity: options.identity }, 'NATS refused an operation: permission denied');
      }
    }
  })();
  void nc.closed().then((err) => {
    connected = false;
    trackConnected(observability, healthKey, false);
    if (err) logger.error({ err }, 'NATS connection closed with error');
  });
  return nc;
}

/**
 * Creates or updates the JetStream streams every service relies on. `replicas` comes from
 * NATS_STREAM_REPLICAS: 1 for a single server, 3 for a production cluster. A stream already
 * configured as wanted is left alone; where NATS permissions leave streams to their owner
 * (`streamsOwner`), a service that may not create or update one waits until the owner has.
 */
export async function ensureStreams(
  nc: NatsConnection,
  opts: { replicas?: number; logger?: Logger } = {},
): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
  const jsm = await whileJetStreamStarts('JetStream', opts.logger, () => jetstreamManager(nc));
  for (const def of Object.values(streams)) {
    const config = {
      name: def.name,
      subjects: [...def.subjects],
      max_msgs_per_subject: def.maxMsgsPerSubject,
      max_age: 7 * 24 * 3600 * 1e9,
      duplicate_window: 120 * 1e9,
      num_replicas: opts.replicas ?? 1,
    };
    await ensureStream(jsm, config, opts.logger);
  }
  return { js: jetstream(nc), jsm };
}

function sameStreamConfig(current: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  return Object.entries(wanted).every(([key, value]) => JSON.stringify(current[key]) === JSON.stringify(value));
}

type StreamConfigWanted = Parameters<JetStreamManager['streams']['add']>[0] & { name: string };

/**
 * Creates the stream or brings its config up to date. Where NATS permissions leave that to the
 * stream's owner: a stream this identity may not even look at is none of its business; one it
 * may not change is used as its owner left it; one it may not create is waited for.
 */
function ensureStream(jsm: JetStreamManager, config: StreamConfigWanted, logger: Logger | undefined): Promise<void> {
  return whileJetStreamStarts(`stream ${config.name}`, logger, () => ensureStreamOnce(jsm, config, logger));
}

async function ensureStreamOnce(jsm: JetStreamManager, config: StreamConfigWanted, logger: Logger | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    let current: Record<string, unknown> | undefined;
    try {
      current = (await jsm.streams.info(config.name)).config as unknown as Record<string, unknown>;
    } catch (err) {
      if (permissionDenied(err)) return;
      if (!isNotFound(err)) throw err;
    }
    try {
      if (current === undefined) await jsm.streams.add(config);
      else if (!sameStreamConfig(current, config as unknown as Record<string, unknown>)) await jsm.streams.update(config.name, config);
      return;
    } catch (err) {
      if (!permissionDenied(err)) throw err;
      if (current !== undefined) return;
    }
    if (attempt === 0) logger?.info({ stream: config.name }, 'waiting for the owner of this stream to create it');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Whether NATS refused an operation for want of permission (requests wrap the server's error). */
export function permissionDenied(err: unknown): boolean {
  return err instanceof PermissionViolationError || (err instanceof Error && err.cause instanceof PermissionViolationError);
}

/**
 * Whether an error means "JetStream cannot take the request now" (worth retrying) rather than
 * an answer or a bug: while a cluster forms or a stream elects a leader, requests time out or
 * find no responders (which the client reports as JetStream not enabled), the server may answer
 * 503, and a new cluster has no peers to place a replicated stream on yet.
 */
export function isJetStreamUnavailable(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.status === 503 || /no suitable peers/i.test(err.message);
  if (err instanceof JetStreamStatusError) return err.code === 503 || err.code === 408;
  return [
    jserrors.JetStreamNotEnabled,
    natsErrors.TimeoutError,
    natsErrors.NoRespondersError,
    natsErrors.ClosedConnectionError,
    natsErrors.DrainingConnectionError,
    natsErrors.ConnectionError,
    natsErrors.RequestError,
  ].some((type) => err instanceof type);
}

/** How long a service's start waits for JetStream (a cluster forming, a leader election) before it fails. */
const jetStreamStartBudgetMs = 60_000;

/**
 * Runs a start-up step (create or check a stream or bucket), retried while JetStream is
 * unavailable, so a service started with a cluster that is still forming waits instead of
 * exiting. The steps are idempotent, so a retry after a lost answer is harmless.
 */
export async function whileJetStreamStarts<T>(what: string, logger: Logger | undefined, step: () => Promise<T>): Promise<T> {
  const startedAt = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!isJetStreamUnavailable(err) || Date.now() - startedAt > jetStreamStartBudgetMs) throw err;
      if (attempt === 0) logger?.warn({ err, what }, 'JetStream is not available yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5000)));
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}

/** Opens a bucket, creating it if missing; an identity that may only read it waits until its writer has created it. */
export async function openBucket(
  nc: NatsConnection,
  bucket: string,
  opts: { history?: number; ttl?: number; replicas?: number; logger?: Logger } = {},
): Promise<KV> {
  const settings = { history: opts.history ?? 5, replicas: opts.replicas ?? 1, ...(opts.ttl ? { ttl: opts.ttl } : {}) };
  for (let attempt = 0; ; attempt++) {
    try {
      return await whileJetStreamStarts(`bucket ${bucket}`, opts.logger, () => new Kvm(nc).create(bucket, settings));
    } catch (err) {
      if (!permissionDenied(err)) throw err;
      if (attempt === 0) opts.logger?.info({ bucket }, 'waiting for the writer of this bucket to create it');
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function permissionDeniedCounter(registry: Registry): Counter<'operation'> {
  const name = 'switchyard_nats_permission_denied_total';
  return (
    (registry.getSingleMetric(name) as Counter<'operation'> | undefined) ??
    new Counter({
      name,
      help: 'Publishes and subscriptions the NATS server refused for want of permission (the permission table and the service disagree).',
      labelNames: ['operation'],
      registers: [registry],
    })
  );
}

/** Counters shared by every typed subscriber, labelled by subject kind and reason. */
export function messageCounters(registry: Registry) {
  const existing = registry.getSingleMetric('switchyard_bus_messages_dropped_total') as Counter<'kind' | 'reason'> | undefined;
  return {
    dropped:
      existing ??
      new Counter({
        name: 'switchyard_bus_messages_dropped_total',
        help: 'NATS messages dropped because they failed their schema or could not be handled.',
        labelNames: ['kind', 'reason'],
        registers: [registry],
      }),
  };
}

/** Encodes a payload after checking it against its schema, so a service can never publish what its peers would drop. */
function encode<K extends SubjectKindName>(name: K, payload: PayloadOf<K>): Uint8Array {
  const checked = subjectKinds[name].schema.parse(payload);
  return new TextEncoder().encode(JSON.stringify(checked));
}

const busTracer = trace.getTracer('switchyard.bus');

/**
 * Runs `send` inside a PRODUCER span whose context travels in the message headers (W3C
 * traceparent), so the receiver's CONSUMER span joins the same trace. Without an SDK
 * (no OTEL_EXPORTER_OTLP_ENDPOINT) the spans are no-ops.
 */
function withProducerSpan<T>(subject: string, send: (headers: ReturnType<typeof natsHeaders>) => T): T {
  return busTracer.startActiveSpan(
    `${subject} publish`,
    { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject } },
    (span) => {
      const headers = natsHeaders();
      injectTraceContext(headers);
      try {
        const result = send(headers);
        if (result instanceof Promise) return result.finally(() => span.end()) as T;
        span.end();
        return result;
      } catch (err) {
        span.end();
        throw err;
      }
    },
  );
}

/** Runs `handle` inside a CONSUMER span that continues the publisher's trace. */
export function withConsumerSpan<T>(subject: string, parent: Context, handle: () => T | Promise<T>): Promise<T> {
  return busTracer.startActiveSpan(
    `${subject} process`,
    { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject } },
    parent,
    async (span) => {
      try {
        return await handle();
      } finally {
        span.end();
      }
    },
  );
}

/** Publishes on core NATS (fire and forget), with the active trace context in the headers. */
export function publish<K extends SubjectKindName>(nc: NatsConnection, name: K, payload: PayloadOf<K>): void {
  const subject = subjectFor(name, payload);
  const data = encode(name, payload);
  withProducerSpan(subject, (headers) => nc.publish(subject, data, { headers }));
}

/**
 * Publishes to JetStream and waits for the stream's ack. `msgId` de-duplicates retried
 * publishes within the stream's duplicate window.
 */
export async function publishDurable<K extends SubjectKindName>(
  js: JetStreamClient,
  name: K,
  payload: PayloadOf<K>,
  msgId?: string,
): Promise<void> {
  const subject = subjectFor(name, payload);
  const data = encode(name, payload);
  await withProducerSpan(subject, (headers) => js.publish(subject, data, { headers, ...(msgId ? { msgID: msgId } : {}) }));
}

export interface TypedMessage<K extends SubjectKindName> {
  subject: string;
  payload: PayloadOf<K>;
  /** Trace context of the publisher, for spans that continue its trace. */
  trace: Context;
}

/**
 * Decodes and validates a message of a kind. Returns undefined (and counts and logs the
 * reason) for messages that are not JSON, fail the schema, or whose payload is about another
 * tenant, service, revision or event than the subject they came on: bad input is dropped,
 * never thrown.
 */
export function decodeMessage<K extends SubjectKindName>(
  name: K,
  msg: Pick<Msg, 'subject' | 'data' | 'headers'>,
  logger: Logger,
  dropped: Counter<'kind' | 'reason'>,
): TypedMessage<K> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(msg.data));
  } catch {
    dropped.inc({ kind: name, reason: 'not_json' });
    logger.warn({ subject: msg.subject }, 'dropped message: not JSON');
    return undefined;
  }
  const result = subjectKinds[name].schema.safeParse(raw);
  if (!result.success) {
    dropped.inc({ kind: name, reason: 'schema' });
    logger.warn({ subject: msg.subject, issues: result.error.issues.slice(0, 5) }, 'dropped message: fails its schema');
    return undefined;
  }
  // Who a message is about comes from the subject (what NATS permissions guard), never from the payload.
  const expected = subjectFor(name, result.data as PayloadOf<K>);
  if (expected !== msg.subject) {
    dropped.inc({ kind: name, reason: 'subject_mismatch' });
    logger.warn({ subject: msg.subject, payloadSubject: expected }, 'dropped message: its payload names another subject');
    return undefined;
  }
  return {
    subject: msg.subject,
    payload: result.data as PayloadOf<K>,
    trace: extractTraceContext(msg.headers as Parameters<typeof extractTraceContext>[0]),
  };
}

/**
 * Subscribes to a core NATS subject pattern with typed, validated delivery. A handler that
 * throws is logged and counted; the subscription keeps running.
 */
export function subscribe<K extends SubjectKindName>(
  nc: NatsConnection,
  name: K,
  pattern: string,
  deps: { logger: Logger; registry: Registry },
  handler: (message: TypedMessage<K>) => void | Promise<void>,
): Subscription {
  const { dropped } = messageCounters(deps.registry);
  const sub = nc.subscribe(pattern);
  void (async () => {
    for await (const msg of sub) {
      const decoded = decodeMessage(name, msg, deps.logger, dropped);
      if (decoded === undefined) continue;
      try {
        await withConsumerSpan(msg.subject, decoded.trace, () => handler(decoded));
      } catch (err) {
        dropped.inc({ kind: name, reason: 'handler_error' });
        deps.logger.error({ err, subject: msg.subject }, 'message handler failed');
      }
    }
  })();
  return sub;
}

export type ReplayFrom = { from: 'all' } | { from: 'new' } | { from: 'last_per_subject' } | { from: 'sequence'; sequence: number };

/** The consumer settings that start delivery where `replay` says. */
export function deliverOptions(replay: ReplayFrom) {
  return replay.from === 'all'
    ? { deliver_policy: 'all' as const }
    : replay.from === 'new'
      ? { deliver_policy: 'new' as const }
      : replay.from === 'last_per_subject'
        ? { deliver_policy: 'last_per_subject' as const }
        : { deliver_policy: 'by_start_sequence' as const, opt_start_seq: replay.sequence };
}

/** Resolves once the connection answers a round trip again (e.g. after a server restart). */
export async function untilConnected(nc: NatsConnection, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await nc.flush();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
