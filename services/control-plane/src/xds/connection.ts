import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Logger, XdsEvent, XdsTypeUrl } from '@switchyard/shared';
import type { XdsCache } from './cache.js';
import { isMalformed, type MalformedRequest } from './encoding.js';
import type { MetricLabels, XdsMetrics } from './metrics.js';
import type { PushScheduler } from './scheduler.js';
import { BadRequest, XdsStream, type OutgoingResponse, type ResponsePolicy, type StreamHooks } from './stream.js';
import { isXdsTypeUrl, typeNames } from './types.js';

/** What every connection of one server shares. */
export interface ConnectionContext {
  cache: XdsCache;
  logger: Logger;
  metrics: XdsMetrics;
  labels: MetricLabels;
  scheduler: PushScheduler<XdsStream>;
  emit(event: Omit<XdsEvent, 'schemaVersion' | 'ts'>): void;
  /** Open connections; each adds itself and removes itself on cleanup. */
  connections: Set<StreamConnection>;
  nextStreamId(): number;
  stalledWriteMs: number;
  maxStreamAgeMs: number | undefined;
  random: () => number;
}

/**
 * One gRPC call carrying one xDS stream: it feeds requests to the protocol state machine,
 * writes its responses with write accounting (bytes handed to gRPC and not yet taken count
 * against the server's send budget), ends a call whose client stopped reading, ends each
 * stream at a jittered maximum age, and cleans up exactly once however the call ends.
 */
export class StreamConnection {
  readonly stream: XdsStream<unknown>;
  private readonly openedAt = performance.now();
  private readonly warned = new Set<string>();
  private identified = false;
  private ended = false;
  private cleaned = false;
  /** Bytes written to this call and not yet taken by the transport. */
  private outstanding = 0;
  private stalled: NodeJS.Timeout | undefined;
  private readonly ageTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ConnectionContext,
    readonly call: grpc.ServerDuplexStream<unknown, Buffer>,
    policy: ResponsePolicy<unknown>,
    fixedType: XdsTypeUrl | undefined,
    readonly api: string,
    /** The types this client may receive (undefined: every type). */
    private readonly allowed?: ReadonlySet<XdsTypeUrl>,
  ) {
    this.stream = new XdsStream(ctx.nextStreamId(), policy, ctx.cache, this.hooks(), fixedType, Date.now());
    ctx.connections.add(this);
    const maxAge = ctx.maxStreamAgeMs;
    if (maxAge !== undefined && maxAge > 0) {
      const age = maxAge * (0.5 + 0.5 * ctx.random());
      this.ageTimer = setTimeout(() => this.end(grpc.status.OK, 'maximum stream age reached'), age).unref();
    }
    call.on('data', (request: object) => this.onRequest(request));
    call.on('end', () => this.end(grpc.status.OK, 'client closed'));
    for (const event of ['cancelled', 'close', 'finish', 'error']) call.on(event, () => this.cleanup());
  }

  get mode() {
    return this.stream.mode;
  }

  /** Ends the call with a status; OK ends it cleanly, anything else as an error the client sees. */
  end(code: grpc.status, details: string): void {
    if (this.ended) return;
    this.ended = true;
    if (code === grpc.status.OK) this.call.end();
    else this.call.emit('error', Object.assign(new Error(details), { code, details }));
  }

  private onRequest(request: object): void {
    if (this.ended) return;
    if (isMalformed(request)) {
      this.ctx.metrics.badRequests.inc({ reason: 'malformed' });
      this.warnOnce('malformed', { error: request.malformed }, 'malformed xDS request; ending the stream');
      this.end(grpc.status.INVALID_ARGUMENT, `malformed request: ${(request as MalformedRequest).malformed}`);
      return;
    }
    const typeUrl = (request as { typeUrl?: string }).typeUrl;
    if (this.allowed !== undefined && typeUrl !== undefined && isXdsTypeUrl(typeUrl) && !this.allowed.has(typeUrl)) {
      // Never answered: the resources do not exist for this client.
      this.ctx.metrics.badRequests.inc({ reason: 'forbidden' });
      this.warnOnce(`forbidden:${typeUrl}`, { typeUrl }, 'xDS request for a type this client may not receive; ignored');
      return;
    }
    try {
      this.stream.handle(request);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const bad = err instanceof BadRequest;
      this.ctx.metrics.badRequests.inc({ reason: bad ? 'invalid' : 'internal' });
      if (bad) this.warnOnce('invalid', { error: message }, 'invalid xDS request; ending the stream');
      else this.ctx.logger.error({ err, stream: this.stream.id }, 'xDS stream failed');
      this.end(bad ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, message);
    }
  }

  private write(response: OutgoingResponse): void {
    if (this.ended) return;
    const size = response.bytes.length;
    const { scheduler, labels } = this.ctx;
    this.outstanding += size;
    scheduler.writing(size);
    this.stalled ??= setTimeout(() => this.onStalled(), this.ctx.stalledWriteMs).unref();
    this.call.write(response.bytes, () => {
      // grpc-js never calls back for writes on a call that died; cleanup releases those.
      if (this.cleaned) return;
      this.outstanding -= size;
      scheduler.written(size);
      clearTimeout(this.stalled);
      this.stalled = this.outstanding > 0 ? setTimeout(() => this.onStalled(), this.ctx.stalledWriteMs).unref() : undefined;
    });
    const type = typeNames[response.typeUrl];
    labels.pushes(type, this.mode).inc();
    labels.pushBytes(type).inc(size);
    if (response.revisionTime > this.openedAt) labels.latency(type).observe((performance.now() - response.revisionTime) / 1000);
  }

  /** A client that stopped reading would otherwise hold the shared send budget. */
  private onStalled(): void {
    this.ctx.metrics.badRequests.inc({ reason: 'stalled' });
    this.warnOnce('stalled', { outstandingBytes: this.outstanding }, 'xDS client stopped reading its responses; ending the stream');
    this.end(grpc.status.UNAVAILABLE, 'the client stopped reading responses');
  }

  private cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    this.ended = true;
    clearTimeout(this.ageTimer);
    clearTimeout(this.stalled);
    this.ctx.scheduler.written(this.outstanding);
    this.outstanding = 0;
    this.ctx.connections.delete(this);
    this.ctx.scheduler.forget(this.stream);
    this.stream.close();
    const node = this.stream.node;
    if (this.identified && node !== undefined) {
      this.ctx.metrics.streams.dec({ mode: this.mode, group: this.stream.group });
      this.ctx.emit({ event: 'disconnect', nodeId: node.id, cluster: node.cluster });
    }
  }

  private warnOnce(key: string, fields: object, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.ctx.logger.warn({ stream: this.stream.id, node: this.stream.node?.id, ...fields }, msg);
  }

  private hooks(): StreamHooks {
    const { metrics, labels, emit, logger } = this.ctx;
    const node = () => ({ nodeId: this.stream.node!.id, cluster: this.stream.node!.cluster });
    return {
      send: (response) => this.write(response),
      connected: (info, group) => {
        this.identified = true;
        metrics.streams.inc({ mode: this.mode, group });
        logger.debug(
          { stream: this.stream.id, node: info.id, group, api: this.api, mode: this.mode, userAgent: info.userAgentName },
          'xDS client connected',
        );
        emit({ event: 'connect', nodeId: info.id, cluster: info.cluster });
      },
      acked: (view, version) => {
        labels.acks(typeNames[view.typeUrl]).inc();
        emit({ event: 'ack', ...node(), typeUrl: view.typeUrl, version });
      },
      nacked: (view, nack) => {
        labels.nacks(typeNames[view.typeUrl]).inc();
        const error = nack.errorDetail.message;
        logger.warn(
          { stream: this.stream.id, node: node().nodeId, type: typeNames[view.typeUrl], version: nack.version, error },
          'xDS client rejected a config (NACK); it keeps its last accepted config, the rejected version is not resent',
        );
        emit({ event: 'nack', ...node(), typeUrl: view.typeUrl, version: nack.version, error });
      },
      unknownType: (typeUrl) => {
        metrics.badRequests.inc({ reason: 'unknown_type' });
        this.warnOnce(`type:${typeUrl}`, { typeUrl }, 'xDS request for a type this server does not serve; ignored');
      },
      staleNonce: () => metrics.badRequests.inc({ reason: 'stale_nonce' }),
      dirty: () => this.ctx.scheduler.markDirty(this.stream),
    };
  }
}
