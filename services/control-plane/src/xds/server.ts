import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { envoyRoot, TypeUrl, type Logger, type PeerCall, type XdsEvent, type XdsTypeUrl } from '@switchyard/shared';
import { nodeGroupOf, type XdsCache } from './cache.js';
import { StreamConnection, type ConnectionContext } from './connection.js';
import { deltaPolicy } from './delta-policy.js';
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
import { createXdsMetrics, metricLabels } from './metrics.js';
import { nodeStatuses, type NodeStatus } from './node-status.js';
import { PushScheduler } from './scheduler.js';
import { sotwPolicy } from './sotw-policy.js';
import type { ResponsePolicy, XdsStream } from './stream.js';
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

type Request = SotwRequest | DeltaRequest | MalformedRequest;
type Kind = 'sotw' | 'delta' | 'fetch';

const policies: Record<XdsMode, ResponsePolicy<unknown>> = {
  sotw: sotwPolicy as ResponsePolicy<unknown>,
  delta: deltaPolicy as ResponsePolicy<unknown>,
};

/**
 * Adds ADS (SotW and delta) and the per-type CDS/EDS/LDS/RDS/SDS services to a gRPC server.
 * Responses are pre-encoded bytes (the service definitions use identity serializers), so
 * what a stream writes is exactly what the cache encoded once.
 */
export function registerXdsServices(server: grpc.Server, cache: XdsCache, deps: XdsServerDeps): XdsServer {
  warmUpEncoding();
  const ctx = connectionContext(cache, deps);
  const unsubscribe = cache.onChange((changes) => {
    const groups = new Set(changes.map((c) => c.group));
    for (const { stream } of ctx.connections) {
      if (stream.heldRequests > 0) stream.resume();
      if (changes.length === 0 || (stream.group !== undefined && groups.has(stream.group))) ctx.scheduler.markDirty(stream);
    }
  });
  const handlers = {
    stream: (mode: XdsMode, fixedType: XdsTypeUrl | undefined, api: string) => (call: grpc.ServerDuplexStream<Request, Buffer>) => {
      const allowed = deps.typesFor?.(call);
      if (allowed !== undefined && fixedType !== undefined && !allowed.has(fixedType)) {
        ctx.metrics.badRequests.inc({ reason: 'forbidden' });
        const details = `this client may not receive ${typeNames[fixedType]}`;
        call.emit('error', Object.assign(new Error(details), { code: grpc.status.PERMISSION_DENIED, details }));
        return;
      }
      new StreamConnection(ctx, call as grpc.ServerDuplexStream<unknown, Buffer>, policies[mode], fixedType, api, allowed);
    },
    fetch: (fixedType: XdsTypeUrl | undefined) => fetchHandler(ctx, fixedType, deps.typesFor),
  };
  for (const service of services) addService(server, service, handlers);
  return serverHandle(ctx, unsubscribe);
}

function connectionContext(cache: XdsCache, deps: XdsServerDeps): ConnectionContext {
  const connections = new Set<StreamConnection>();
  const scheduler = new PushScheduler<XdsStream>(deps.sendBudgetBytes ?? 32 * 1024 * 1024);
  const metrics = createXdsMetrics(deps.registry, {
    cache,
    held: () => [...connections].reduce((n, c) => n + c.stream.heldRequests, 0),
    queued: () => scheduler.queued,
    bytesInFlight: () => scheduler.inFlight,
  });
  let nextStreamId = 0;
  return {
    cache,
    logger: deps.logger,
    metrics,
    labels: metricLabels(metrics),
    scheduler,
    emit: (event) => deps.onEvent?.({ schemaVersion: 1, ts: Date.now(), ...event }),
    connections,
    nextStreamId: () => ++nextStreamId,
    stalledWriteMs: deps.stalledWriteMs ?? 60_000,
    maxStreamAgeMs: deps.maxStreamAgeMs,
    random: deps.random ?? Math.random,
  };
}

/** Method names and paths come from Envoy's service protos, already loaded for encoding. */
function addService(
  server: grpc.Server,
  { name, api, type }: (typeof services)[number],
  handlers: {
    stream: (mode: XdsMode, fixedType: XdsTypeUrl | undefined, api: string) => grpc.handleBidiStreamingCall<Request, Buffer>;
    fetch: (fixedType: XdsTypeUrl | undefined) => grpc.handleUnaryCall<Request, Buffer>;
  },
): void {
  const definition: Record<string, grpc.MethodDefinition<Request, Buffer>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of envoyRoot().lookupService(name).methodsArray) {
    const kind: Kind = method.name.startsWith('Delta') ? 'delta' : method.name.startsWith('Fetch') ? 'fetch' : 'sotw';
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
    implementation[method.name] = (kind === 'fetch' ? handlers.fetch(type) : handlers.stream(kind, type, api)) as grpc.UntypedHandleCall;
  }
  server.addService(definition as grpc.ServiceDefinition, implementation);
}

function fetchHandler(
  ctx: ConnectionContext,
  fixedType: XdsTypeUrl | undefined,
  typesFor: XdsServerDeps['typesFor'],
): grpc.handleUnaryCall<Request, Buffer> {
  return (call, callback) => {
    const request = call.request;
    if (isMalformed(request)) {
      ctx.metrics.badRequests.inc({ reason: 'malformed' });
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `malformed request: ${request.malformed}` });
      return;
    }
    const sotw = request as SotwRequest;
    const typeUrl = sotw.typeUrl === '' ? fixedType : sotw.typeUrl;
    if (typeUrl === undefined || !isXdsTypeUrl(typeUrl) || (fixedType !== undefined && typeUrl !== fixedType)) {
      ctx.metrics.badRequests.inc({ reason: 'unknown_type' });
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `cannot serve type ${typeUrl ?? '(none)'}` });
      return;
    }
    if (typesFor?.(call).has(typeUrl) === false) {
      ctx.metrics.badRequests.inc({ reason: 'forbidden' });
      callback({ code: grpc.status.PERMISSION_DENIED, details: `this client may not receive ${typeNames[typeUrl]}` });
      return;
    }
    void ctx.cache.whenReady().then(() => callback(null, fetchResponse(ctx.cache, sotw, typeUrl)));
  };
}

function serverHandle(ctx: ConnectionContext, unsubscribe: () => void): XdsServer {
  const { connections, scheduler } = ctx;
  const endAll = () => {
    for (const { call } of [...connections])
      call.emit('error', Object.assign(new Error('control plane dropped the stream'), { code: grpc.status.UNAVAILABLE }));
  };
  return {
    nodes: () => nodeStatuses(connections),
    get streamCount() {
      return connections.size;
    },
    get bytesInFlight() {
      return scheduler.inFlight;
    },
    settled: () =>
      scheduler.queued === 0 &&
      [...connections].every(
        ({ stream }) => stream.heldRequests === 0 && [...stream.views.values()].every((v) => v.inflight === undefined),
      ),
    streamsInSync: (minTypes = 1) => [...connections].filter(({ stream }) => stream.inSync(minTypes)).length,
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
