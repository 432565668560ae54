import * as grpc from '@grpc/grpc-js';
import type { HealthTransition, Logger } from '@switchyard/shared';
import type { CheckProtocol } from './assigner.js';
import type { EndpointResult, HealthCoordinator, ResultOutcome } from './coordinator.js';
import type { EventStreamerMetrics } from './metrics.js';
import { buildSpecifier } from './specifier.js';

/**
 * The HDS adapter (`envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck`): each
 * Envoy opens one stream, announces its node and capabilities, receives the
 * HealthCheckSpecifier of the endpoints assigned to it and reports their health every
 * interval. Specifiers are sent only when an Envoy's assignment changed, coalesced per
 * event-loop turn, and never queued more than one deep for an Envoy that is not reading.
 */

interface SocketAddress {
  address?: string;
  port_value?: number;
}

interface EndpointHealth {
  endpoint?: { address?: { socket_address?: SocketAddress } };
  health_status?: string;
}

export interface HdsRequest {
  health_check_request?: {
    node?: { id?: string; cluster?: string };
    capability?: { health_check_protocols?: string[] };
  };
  endpoint_health_response?: {
    endpoints_health?: EndpointHealth[];
    cluster_endpoints_health?: {
      cluster_name?: string;
      locality_endpoints_health?: { endpoints_health?: EndpointHealth[] }[];
    }[];
  };
}

type HdsCall = grpc.ServerDuplexStream<HdsRequest, Record<string, unknown>>;

interface HdsStream {
  call: HdsCall;
  checker: string | undefined;
  lastSent: string | undefined;
  blocked: boolean;
  closed: boolean;
  /** Problems already logged for this stream, so a misbehaving Envoy cannot flood the log. */
  warned: Set<string>;
}

/** Where Envoys joining and leaving go: the coordinator itself, or with replicas the membership that feeds it the fleet. */
export interface CheckerFleet {
  connectMany(checkers: readonly { id: string; protocols: readonly CheckProtocol[] }[], now: number): void;
  disconnect(checkers: readonly string[], now: number): void;
}

export type RoutedOutcome = ResultOutcome | 'forwarded';

/** Takes one Envoy's results: aggregates them here, or forwards those another replica aggregates. */
export type ResultRouter = (
  checker: string,
  results: readonly EndpointResult[],
  now: number,
) => { transitions: HealthTransition[]; outcomes: RoutedOutcome[] };

export interface HdsServerDeps {
  coordinator: HealthCoordinator;
  /** Default: the coordinator (one replica). */
  fleet?: CheckerFleet;
  /** Default: the coordinator aggregates every result (one replica). */
  route?: ResultRouter;
  reportIntervalMs: number;
  metrics: EventStreamerMetrics;
  logger: Logger;
  now: () => number;
  onTransitions: (transitions: HealthTransition[]) => void;
}

const protocolsByCapability: Record<string, CheckProtocol | undefined> = { HTTP: 'http', TCP: 'tcp' };

export class HdsServer {
  private readonly streams = new Map<string, HdsStream>();
  private ready = false;
  private flushScheduled = false;
  // Joins and leaves since the last flush, applied together: a fleet reconnecting after a
  // restart arrives in bursts, and one pass over the endpoints serves the whole burst.
  private readonly pendingJoins = new Map<string, CheckProtocol[]>();
  private readonly pendingLeaves = new Set<string>();

  constructor(private readonly deps: HdsServerDeps) {}

  get connected(): number {
    return this.streams.size;
  }

  /** Node ids of the connected Envoys. */
  nodes(): string[] {
    return [...this.streams.keys()].sort();
  }

  /** Handlers for `envoy.service.health.v3.HealthDiscoveryService`. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamHealthCheck: (call: HdsCall) => this.onStream(call),
      FetchHealthCheck: (_call: grpc.ServerUnaryCall<HdsRequest, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'HDS is served as a stream: use StreamHealthCheck' }),
    };
  }

  /** Starts sending specifiers: called once the desired state is loaded, so no Envoy gets a partial list. */
  markReady(): void {
    this.ready = true;
    this.applyPending();
    this.deps.coordinator.takeDirtyCheckers();
    for (const stream of this.streams.values()) this.send(stream);
  }

  /** Sends new specifiers to the Envoys whose assignment changed, once per event-loop turn. */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Ends every stream (Envoys reconnect with backoff to another replica or to us after restart). */
  close(): void {
    for (const stream of this.streams.values()) {
      stream.closed = true;
      stream.call.end();
    }
    this.streams.clear();
    this.deps.metrics.hdsStreams.set(0);
  }

  private flush(): void {
    this.applyPending();
    if (!this.ready) return;
    for (const checker of this.deps.coordinator.takeDirtyCheckers()) {
      const stream = this.streams.get(checker);
      if (stream !== undefined) this.send(stream);
    }
  }

  private applyPending(): void {
    const { now } = this.deps;
    const fleet = this.deps.fleet ?? this.deps.coordinator;
    if (this.pendingLeaves.size > 0) fleet.disconnect([...this.pendingLeaves], now());
    if (this.pendingJoins.size > 0)
      fleet.connectMany(
        [...this.pendingJoins].map(([id, protocols]) => ({ id, protocols })),
        now(),
      );
    this.pendingLeaves.clear();
    this.pendingJoins.clear();
  }

  private onStream(call: HdsCall): void {
    const stream: HdsStream = { call, checker: undefined, lastSent: undefined, blocked: false, closed: false, warned: new Set() };
    call.on('data', (message: HdsRequest) => {
      try {
        this.onMessage(stream, message);
      } catch (err) {
        this.drop(stream, 'handler_error', { err });
      }
    });
    call.on('end', () => {
      call.end();
      this.onClose(stream);
    });
    call.on('cancelled', () => this.onClose(stream));
    call.on('error', () => this.onClose(stream));
    call.on('close', () => this.onClose(stream));
  }

  private onMessage(stream: HdsStream, message: HdsRequest): void {
    if (stream.closed) return;
    if (message.health_check_request !== undefined) this.onRequest(stream, message.health_check_request);
    else if (message.endpoint_health_response !== undefined) this.onResponse(stream, message.endpoint_health_response);
    else this.drop(stream, 'empty_message');
  }

  private onRequest(stream: HdsStream, request: NonNullable<HdsRequest['health_check_request']>): void {
    const id = request.node?.id ?? '';
    if (id === '') {
      this.drop(stream, 'no_node_id');
      stream.closed = true;
      stream.call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'HealthCheckRequest.node.id is required' });
      return;
    }
    if (stream.checker !== undefined && stream.checker !== id) {
      this.drop(stream, 'node_changed', { from: stream.checker, to: id });
      return;
    }
    const previous = this.streams.get(id);
    if (previous !== undefined && previous !== stream) {
      // The same Envoy reconnected before its old stream timed out: the new stream takes over.
      previous.closed = true;
      previous.call.end();
      this.deps.logger.info({ node: id }, 'HDS stream replaced by a newer one from the same node');
    }
    stream.checker = id;
    this.streams.set(id, stream);
    this.deps.metrics.hdsStreams.set(this.streams.size);
    const protocols = (request.capability?.health_check_protocols ?? [])
      .map((p) => protocolsByCapability[p])
      .filter((p): p is CheckProtocol => p !== undefined);
    const capabilities = request.capability?.health_check_protocols ?? [];
    if (capabilities.length > 0 && protocols.length === 0) {
      // It only offers checks we never ask for (e.g. REDIS): it cannot take any endpoint.
      this.drop(stream, 'no_usable_capability', { capabilities });
      return;
    }
    this.deps.logger.info({ node: id, cluster: request.node?.cluster, protocols }, 'Envoy connected for health checks');
    this.pendingLeaves.delete(id);
    this.pendingJoins.set(id, protocols);
    this.scheduleFlush();
  }

  private onResponse(stream: HdsStream, response: NonNullable<HdsRequest['endpoint_health_response']>): void {
    const checker = stream.checker;
    if (checker === undefined) {
      this.drop(stream, 'response_before_request');
      return;
    }
    const clusters = response.cluster_endpoints_health ?? [];
    if (clusters.length === 0 && (response.endpoints_health ?? []).length > 0) {
      // Only the deprecated flat list, without cluster names: results cannot be attributed.
      this.drop(stream, 'legacy_response_without_clusters');
      return;
    }
    const results: EndpointResult[] = [];
    let malformed = 0;
    for (const cluster of clusters) {
      for (const locality of cluster.locality_endpoints_health ?? []) {
        for (const health of locality.endpoints_health ?? []) {
          const socket = health.endpoint?.address?.socket_address;
          if (!cluster.cluster_name || !socket?.address || !socket.port_value) {
            malformed++;
            continue;
          }
          results.push({
            cluster: cluster.cluster_name,
            address: socket.address,
            port: Number(socket.port_value),
            status: health.health_status ?? 'UNKNOWN',
          });
        }
      }
    }
    if (malformed > 0) {
      this.deps.metrics.results.inc({ outcome: 'malformed' }, malformed);
      this.warnOnce(stream, 'malformed', { count: malformed }, 'HDS results without cluster name or socket address dropped');
    }
    const route = this.deps.route ?? ((...args: Parameters<ResultRouter>) => this.deps.coordinator.report(...args));
    const { transitions, outcomes } = route(checker, results, this.deps.now());
    const counts = new Map<RoutedOutcome, number>();
    outcomes.forEach((outcome, i) => {
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      if (outcome !== 'accepted' && outcome !== 'forwarded') {
        const result = results[i] as EndpointResult;
        this.warnOnce(stream, outcome, { node: checker, ...result }, `HDS result dropped: ${outcome.replace(/_/g, ' ')}`);
      }
    });
    for (const [outcome, count] of counts) this.deps.metrics.results.inc({ outcome }, count);
    if (transitions.length > 0) this.deps.onTransitions(transitions);
  }

  private send(stream: HdsStream): void {
    const checker = stream.checker;
    if (checker === undefined || stream.closed || stream.blocked || !this.ready) return;
    const specifier = buildSpecifier(this.deps.coordinator.targetsOf(checker), this.deps.reportIntervalMs);
    const text = JSON.stringify(specifier);
    if (text === stream.lastSent) return;
    stream.lastSent = text;
    this.deps.metrics.specifiersSent.inc();
    if (!stream.call.write(specifier)) {
      // The Envoy is not reading: hold back and send its then-current assignment once it drains.
      stream.blocked = true;
      stream.call.once('drain', () => {
        stream.blocked = false;
        this.send(stream);
      });
    }
  }

  private onClose(stream: HdsStream): void {
    const checker = stream.checker;
    stream.closed = true;
    stream.checker = undefined;
    if (checker === undefined || this.streams.get(checker) !== stream) return;
    this.streams.delete(checker);
    this.deps.metrics.hdsStreams.set(this.streams.size);
    this.deps.logger.info({ node: checker }, 'Envoy health-check stream closed; its endpoints move to other Envoys');
    this.pendingJoins.delete(checker);
    this.pendingLeaves.add(checker);
    this.scheduleFlush();
  }

  private drop(stream: HdsStream, reason: string, details: Record<string, unknown> = {}): void {
    this.deps.metrics.hdsDropped.inc({ reason });
    this.warnOnce(stream, reason, { node: stream.checker, ...details }, `HDS message dropped: ${reason.replace(/_/g, ' ')}`);
  }

  private warnOnce(stream: HdsStream, reason: string, details: Record<string, unknown>, message: string): void {
    if (stream.warned.has(reason)) return;
    stream.warned.add(reason);
    this.deps.logger.warn(details, `${message} (further ones on this stream are only counted)`);
  }
}
