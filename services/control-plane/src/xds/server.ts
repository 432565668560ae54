import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { envoyRoot, TypeUrl, type Logger, type PeerCall, type XdsEvent, type XdsTypeUrl } from '@switchyard/shared';
import { nodeGroupOf, type XdsCache } from './cache.js';
import {
  decodeDeltaRequest,
  decodeDiscoveryRequest,
  decodeNames,
  encodeDiscoveryResponse,
  isMalformed,
  warmUpEncoding,
  type DeltaRequest,
  type MalformedRequest,
  type SotwRequest,
} from './encoding.js';
import { createXdsMetrics, type XdsMetrics } from './metrics.js';
import { nodeStatuses, type NodeStatus } from './node-status.js';
import { PushScheduler } from './scheduler.js';
import { BadRequest, XdsStream, type StreamHooks } from './stream.js';
import { Subscription } from './type-state.js';
import { isXdsTypeUrl, typeNames, type XdsMode } from './types.js';

export interface XdsServerDeps {
  logger: Logger;
  registry: Registry;
  /** connect, disconnect, ack and nack, for the wiring to publish on NATS. */
  onEvent?: (event: XdsEvent) => void;
  /**
   * Upper bound on a stream's life. Each stream gets a random age between half and all of it,
   * so a fleet that connected at once (after a restart) reconnects spread out, not at once.
   */
  maxStreamAgeMs?: number;
  /** Bytes written but not yet taken by the transport before pushes wait (default 32 MiB). */
  sendBudgetBytes?: number;
  /** A stream whose writes make no progress for this long is ended (default 60 s). */
  stalledWriteMs?: number;
  random?: () => number;
  /** The types a call's client may receive (default every type); see access.ts. */
  typesFor?: (call: PeerCall) => ReadonlySet<XdsTypeUrl>;
}

export interface XdsServer {
  /** Per-node delivery state for GET /v1/nodes. */
  nodes(): NodeStatus[];
  readonly streamCount: number;
  /** Bytes handed to gRPC and not yet taken by the transport (bounded by the send budget). */
  readonly bytesInFlight: number;
  /** True when no stream has a request held, a push queued or a response unanswered. */
  settled(): boolean;
  /** Streams whose every requested type is sent, answered and current (at least `minTypes` requested). */
  streamsInSync(minTypes?: number): number;
  /** Ends every stream with UNAVAILABLE; clients reconnect. */
  dropAllStreams(): void;
  /** Ends every stream and detaches from the cache. */
  close(): void;
}

const services: { name: string; api: string; type: XdsTypeUrl | undefined }[] = [
  { name: 'envoy.service.discovery.v3.AggregatedDiscoveryService', api: 'ads', type: undefined },
  { name: 'envoy.service.cluster.v3.ClusterDiscoveryService', api: 'cds', type: TypeUrl.Cluster },
  { name: 'envoy.service.endpoint.v3.EndpointDiscoveryService', api: 'eds', type: TypeUrl.ClusterLoadAssignment },
  { name: 'envoy.service.listener.v3.ListenerDiscoveryService', api: 'lds', type: TypeUrl.Listener },
  { name: 'envoy.service.route.v3.RouteDiscoveryService', api: 'rds', type: TypeUrl.RouteConfiguration },
  { name: 'envoy.service.secret.v3.SecretDiscoveryService', api: 'sds', type: TypeUrl.Secret },
];

interface StreamEntry {
  stream: XdsStream;
  api: string;
  call: grpc.ServerDuplexStream<unknown, Buffer>;
}

type Request = SotwRequest | DeltaRequest | MalformedRequest;

/**
 * Adds ADS (SotW and delta) and the per-type CDS/EDS/LDS/RDS/SDS services to a gRPC server.
 * Responses are pre-encoded bytes (the service definitions use identity serializers), so
 * what a stream writes is exactly what the cache encoded once.
 */
export function registerXdsServices(server: grpc.Server, cache: XdsCache, deps: XdsServerDeps): XdsServer {
  warmUpEncoding();
  const logger = deps.logger;
  const random = deps.random ?? Math.random;
  const stalledWriteMs = deps.stalledWriteMs ?? 60_000;
  const entries = new Set<StreamEntry>();
  let nextStreamId = 0;
  const scheduler = new PushScheduler<XdsStream>(deps.sendBudgetBytes ?? 32 * 1024 * 1024);
  const metrics = createXdsMetrics(deps.registry, {
    cache,
    held: () => [...entries].reduce((n, e) => n + e.stream.heldRequests, 0),
    queued: () => scheduler.queued,
    bytesInFlight: () => scheduler.inFlight,
  });
  const emit = (event: Omit<XdsEvent, 'schemaVersion' | 'ts'>) => deps.onEvent?.({ schemaVersion: 1, ts: Date.now(), ...event });
  const labels = labelCache(metrics);

  const unsubscribe = cache.onChange((changes) => {
    const groups = new Set(changes.map((c) => c.group));
    for (const { stream } of entries) {
      if (stream.heldRequests > 0) stream.resume();
      if (changes.length === 0 || (stream.group !== undefined && groups.has(stream.group))) scheduler.markDirty(stream);
    }
  });

  const handleStream =
    (mode: XdsMode, fixedType: XdsTypeUrl | undefined, api: string) => (call: grpc.ServerDuplexStream<Request, Buffer>) => {
      const allowed = deps.typesFor?.(call);
      if (allowed !== undefined && fixedType !== undefined && !allowed.has(fixedType)) {
        metrics.badRequests.inc({ reason: 'forbidden' });
        const details = `this client may not receive ${typeNames[fixedType]}`;
        call.emit('error', Object.assign(new Error(details), { code: grpc.status.PERMISSION_DENIED, details }));
        return;
      }
      const openedAt = performance.now();
      let identified = false;
      let ended = false;
      const warned = new Set<string>();
      const warnOnce = (key: string, fields: object, msg: string) => {
        if (warned.has(key)) return;
        warned.add(key);
        logger.warn({ stream: stream.id, node: stream.node?.id, ...fields }, msg);
      };
      const hooks: StreamHooks = {
        send: (response) => {
          if (ended) return;
          const size = response.bytes.length;
          outstanding += size;
          scheduler.writing(size);
          stalled ??= setTimeout(onStalled, stalledWriteMs).unref();
          call.write(response.bytes, () => {
            // grpc-js never calls back for writes on a call that died; cleanup releases those.
            if (cleaned) return;
            outstanding -= size;
            scheduler.written(size);
            clearTimeout(stalled);
            stalled = outstanding > 0 ? setTimeout(onStalled, stalledWriteMs).unref() : undefined;
          });
          const type = typeNames[response.typeUrl];
          labels.pushes(type, mode).inc();
          labels.pushBytes(type).inc(size);
          if (response.revisionTime > openedAt) labels.latency(type).observe((performance.now() - response.revisionTime) / 1000);
        },
        connected: (node, group) => {
          identified = true;
          metrics.streams.inc({ mode, group });
          logger.debug({ stream: stream.id, node: node.id, group, api, mode, userAgent: node.userAgentName }, 'xDS client connected');
          emit({ event: 'connect', nodeId: node.id, cluster: node.cluster });
        },
        acked: (view, version) => {
          labels.acks(typeNames[view.typeUrl]).inc();
          emit({ event: 'ack', nodeId: stream.node!.id, cluster: stream.node!.cluster, typeUrl: view.typeUrl, version });
        },
        nacked: (view, nack) => {
          labels.nacks(typeNames[view.typeUrl]).inc();
          logger.warn(
            {
              stream: stream.id,
              node: stream.node!.id,
              type: typeNames[view.typeUrl],
              version: nack.version,
              error: nack.errorDetail.message,
            },
            'xDS client rejected a config (NACK); it keeps its last accepted config, the rejected version is not resent',
          );
          emit({
            event: 'nack',
            nodeId: stream.node!.id,
            cluster: stream.node!.cluster,
            typeUrl: view.typeUrl,
            version: nack.version,
            error: nack.errorDetail.message,
          });
        },
        unknownType: (typeUrl) => {
          metrics.badRequests.inc({ reason: 'unknown_type' });
          warnOnce(`type:${typeUrl}`, { typeUrl }, 'xDS request for a type this server does not serve; ignored');
        },
        staleNonce: () => metrics.badRequests.inc({ reason: 'stale_nonce' }),
        dirty: () => scheduler.markDirty(stream),
      };
      const stream = new XdsStream(++nextStreamId, mode, cache, hooks, fixedType, Date.now());
      // Bytes written to this call and not yet taken by the transport, and a timer that ends a
      // call whose client stopped reading (it would otherwise hold the shared send budget).
      let outstanding = 0;
      let stalled: NodeJS.Timeout | undefined;
      const onStalled = () => {
        metrics.badRequests.inc({ reason: 'stalled' });
        warnOnce('stalled', { outstandingBytes: outstanding }, 'xDS client stopped reading its responses; ending the stream');
        end(grpc.status.UNAVAILABLE, 'the client stopped reading responses');
      };
      const entry: StreamEntry = { stream, api, call: call as grpc.ServerDuplexStream<unknown, Buffer> };
      entries.add(entry);

      const end = (code: grpc.status, details: string) => {
        if (ended) return;
        ended = true;
        if (code === grpc.status.OK) call.end();
        else call.emit('error', Object.assign(new Error(details), { code, details }));
      };
      const maxAge = deps.maxStreamAgeMs;
      const ageTimer =
        maxAge !== undefined && maxAge > 0
          ? setTimeout(() => end(grpc.status.OK, 'maximum stream age reached'), maxAge * (0.5 + 0.5 * random())).unref()
          : undefined;

      call.on('data', (request: Request) => {
        if (ended) return;
        if (isMalformed(request)) {
          metrics.badRequests.inc({ reason: 'malformed' });
          warnOnce('malformed', { error: request.malformed }, 'malformed xDS request; ending the stream');
          end(grpc.status.INVALID_ARGUMENT, `malformed request: ${request.malformed}`);
          return;
        }
        if (allowed !== undefined && isXdsTypeUrl(request.typeUrl) && !allowed.has(request.typeUrl)) {
          // Never answered: the resources do not exist for this client.
          metrics.badRequests.inc({ reason: 'forbidden' });
          warnOnce(
            `forbidden:${request.typeUrl}`,
            { typeUrl: request.typeUrl },
            'xDS request for a type this client may not receive; ignored',
          );
          return;
        }
        try {
          if (mode === 'sotw') stream.handleSotw(request as SotwRequest);
          else stream.handleDelta(request as DeltaRequest);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const bad = err instanceof BadRequest;
          metrics.badRequests.inc({ reason: bad ? 'invalid' : 'internal' });
          if (bad) warnOnce('invalid', { error: message }, 'invalid xDS request; ending the stream');
          else logger.error({ err, stream: stream.id }, 'xDS stream failed');
          end(bad ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, message);
        }
      });
      call.on('end', () => end(grpc.status.OK, 'client closed'));
      let cleaned = false;
      const cleanup = () => {
        if (cleaned) return;
        cleaned = true;
        ended = true;
        if (ageTimer) clearTimeout(ageTimer);
        clearTimeout(stalled);
        scheduler.written(outstanding);
        outstanding = 0;
        entries.delete(entry);
        scheduler.forget(stream);
        stream.close();
        if (identified && stream.node !== undefined) {
          metrics.streams.dec({ mode, group: stream.group });
          emit({ event: 'disconnect', nodeId: stream.node.id, cluster: stream.node.cluster });
        }
      };
      call.on('cancelled', cleanup);
      call.on('close', cleanup);
      call.on('finish', cleanup);
      call.on('error', cleanup);
    };

  const handleFetch =
    (fixedType: XdsTypeUrl | undefined) =>
    (call: grpc.ServerUnaryCall<SotwRequest | MalformedRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const request = call.request;
      if (isMalformed(request)) {
        metrics.badRequests.inc({ reason: 'malformed' });
        callback({ code: grpc.status.INVALID_ARGUMENT, details: `malformed request: ${request.malformed}` });
        return;
      }
      const typeUrl = request.typeUrl === '' ? fixedType : request.typeUrl;
      if (typeUrl === undefined || !isXdsTypeUrl(typeUrl) || (fixedType !== undefined && typeUrl !== fixedType)) {
        metrics.badRequests.inc({ reason: 'unknown_type' });
        callback({ code: grpc.status.INVALID_ARGUMENT, details: `cannot serve type ${typeUrl ?? '(none)'}` });
        return;
      }
      if (deps.typesFor?.(call).has(typeUrl) === false) {
        metrics.badRequests.inc({ reason: 'forbidden' });
        callback({ code: grpc.status.PERMISSION_DENIED, details: `this client may not receive ${typeNames[typeUrl]}` });
        return;
      }
      void cache.whenReady().then(() => callback(null, fetchResponse(cache, request, typeUrl)));
    };

  // Method names and paths come from Envoy's service protos, already loaded for encoding.
  for (const { name, api, type } of services) {
    const definition: Record<string, grpc.MethodDefinition<Request, Buffer>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of envoyRoot().lookupService(name).methodsArray) {
      const kind = method.name.startsWith('Delta') ? 'delta' : method.name.startsWith('Fetch') ? 'fetch' : 'sotw';
      definition[method.name] = {
        path: `/${name}/${method.name}`,
        requestStream: method.requestStream === true,
        responseStream: method.responseStream === true,
        requestDeserialize: kind === 'delta' ? decodeDeltaRequest : decodeDiscoveryRequest,
        requestSerialize: () => {
          throw new Error('the xDS server does not send requests');
        },
        responseSerialize: (bytes: Buffer) => bytes,
        responseDeserialize: (bytes: Buffer) => bytes,
      };
      implementation[method.name] = (kind === 'fetch' ? handleFetch(type) : handleStream(kind, type, api)) as grpc.UntypedHandleCall;
    }
    server.addService(definition as grpc.ServiceDefinition, implementation);
  }

  const endAll = () => {
    for (const { call } of [...entries])
      call.emit('error', Object.assign(new Error('control plane dropped the stream'), { code: grpc.status.UNAVAILABLE }));
  };
  return {
    nodes: () => nodeStatuses(entries),
    get streamCount() {
      return entries.size;
    },
    get bytesInFlight() {
      return scheduler.inFlight;
    },
    settled: () =>
      scheduler.queued === 0 &&
      [...entries].every(({ stream }) => stream.heldRequests === 0 && [...stream.views.values()].every((v) => v.inflight === undefined)),
    streamsInSync: (minTypes = 1) => [...entries].filter(({ stream }) => stream.inSync(minTypes)).length,
    dropAllStreams: endAll,
    close: () => {
      unsubscribe();
      endAll();
    },
  };
}

/** A one-off response for the unary Fetch methods: every subscribed resource, current version. */
function fetchResponse(cache: XdsCache, request: SotwRequest, typeUrl: XdsTypeUrl): Buffer {
  const group = request.node === undefined ? 'envoy' : nodeGroupOf(request.node);
  const state = cache.typeState(group, typeUrl);
  const names = decodeNames(request.names);
  // Fetch (REST-style polling) has no legacy rules: no names means every resource of the type.
  const sub = new Subscription(state, 'fetch', names.length === 0 || names.includes('*'), new Set(names));
  return encodeDiscoveryResponse({ versionInfo: sub.contentVersion(), typeUrl, nonce: '', resources: sub.resources() });
}

/** Labelled metric children, looked up once: a push to a thousand streams touches them a thousand times. */
function labelCache(metrics: XdsMetrics) {
  const memo = <T>(make: (...keys: string[]) => T) => {
    const cache = new Map<string, T>();
    return (...keys: string[]): T => {
      const key = keys.join('\0');
      let child = cache.get(key);
      if (child === undefined) {
        child = make(...keys);
        cache.set(key, child);
      }
      return child;
    };
  };
  return {
    pushes: memo((type, mode) => metrics.pushes.labels(type!, mode!)),
    pushBytes: memo((type) => metrics.pushBytes.labels(type!)),
    acks: memo((type) => metrics.acks.labels(type!)),
    nacks: memo((type) => metrics.nacks.labels(type!)),
    latency: memo((type) => metrics.pushLatency.labels(type!)),
  };
}
