import * as grpc from '@grpc/grpc-js';
import { protoDuration, type Logger } from '@switchyard/shared';
import type { IngestOutcome, LoadAggregator } from './load-aggregator.js';
import type { DecodedNode } from './decoded.js';
import { readMetricFamilies } from './metrics-reader.js';
import type { Source } from './reports.js';
import type { SinkMetrics } from './sink-metrics.js';
import { StreamGuard, type StreamLimits } from './stream-guard.js';
import { loadStatsRequestType, metricsMessageType, type Wire } from './wire.js';

export interface IngestOptions {
  aggregator: LoadAggregator;
  metrics: SinkMetrics;
  logger: Logger;
  wire: Wire;
  clock: () => number;
  limits: StreamLimits;
  /** LRS load_reporting_interval. */
  intervalMs: number;
  endpointGranularity: boolean;
  /** MetricsService counters are deltas unless a node says otherwise in its metadata. */
  countersAsDeltas: boolean;
}

interface Status {
  code: grpc.status;
  details: string;
}

interface IngestStream {
  id: string;
  source: Source;
  guard: StreamGuard;
  nodeId: string | undefined;
  finished: boolean;
  /** Ends the stream: with `status` when the sink closes it, without when the client went away. */
  finish(status?: Status): void;
}

/** The client feature by which a node says it honours send_all_clusters. */
const sendAllClustersFeature = 'envoy.lrs.supports_send_all_clusters';
/** Node metadata key overriding STATS_COUNTERS_AS_DELTAS for one node (mirrors the metrics_service sink option). */
export const countersAsDeltasMetadataKey = 'report_counters_as_deltas';

/**
 * The gRPC edge: MetricsService/StreamMetrics and LoadReportingService/StreamLoadStats. Each
 * stream is guarded (size, rate), decodes its own messages, learns its node from the first
 * message and feeds the aggregator. It registers on whatever gRPC server it is given, which in
 * all-in-one mode is the control plane's xDS server (gRPC clients send LRS only to their xDS
 * server).
 */
export class IngestServer {
  private nextId = 0;
  private readonly streams = new Set<IngestStream>();

  constructor(private readonly options: IngestOptions) {}

  register(server: grpc.Server): void {
    server.addService(this.options.wire.metricsService, { StreamMetrics: this.streamMetrics });
    server.addService(this.options.wire.lrsService, { StreamLoadStats: this.streamLoadStats });
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Ends every stream with UNAVAILABLE, so clients reconnect (to another replica) and the server can shut down. */
  closeAll(): void {
    for (const stream of [...this.streams]) stream.finish({ code: grpc.status.UNAVAILABLE, details: 'stats-sink is shutting down' });
  }

  private readonly streamMetrics = (call: grpc.ServerReadableStream<Buffer, object>, callback: grpc.sendUnaryData<object>): void => {
    const { aggregator, wire, metrics, clock } = this.options;
    const stream = this.start('metrics', call, (status) => (status ? callback(status) : callback(null, {})));
    call.on('data', (bytes: Buffer) => {
      if (stream.finished) return;
      const now = clock();
      const message = this.decode(stream, bytes, now, wire.decodeMetrics, metricsMessageType);
      if (message === undefined) return;
      const node = message.identifier?.node;
      if (!this.identify(stream, node, 'identifier.node', () => this.countersAsDeltas(node))) return;
      const read = readMetricFamilies(message.envoy_metrics ?? [], wire.metricTypes);
      metrics.families.inc(read.families);
      const ignored = { unknown_type: read.unknownTypes, type_mismatch: read.typeMismatches, invalid_value: read.invalidValues };
      for (const [reason, count] of Object.entries(ignored)) {
        if (count === 0) continue;
        metrics.ignoredFamilies.inc({ reason }, count);
        stream.guard.warnOnce(reason, { families: count }, `skipped metric families: ${reason.replace('_', ' ')}`);
      }
      const outcome = aggregator.ingest(
        stream.id,
        { source: 'metrics', clusters: read.clusters.values(), snapshotMs: read.snapshotMs },
        now,
      );
      this.count(stream, outcome);
    });
    call.on('end', () => stream.finish());
    call.on('cancelled', () => stream.finish());
    call.on('error', () => stream.finish());
  };

  private readonly streamLoadStats = (call: grpc.ServerDuplexStream<Buffer, object>): void => {
    const { aggregator, wire, clock } = this.options;
    const stream = this.start('lrs', call, (status) => {
      if (status) call.emit('error', status);
      else call.end();
    });
    let sendAll = false;
    let sentVersion = -1;
    let sentAt = Number.NEGATIVE_INFINITY;
    const respond = (now: number) => {
      sentVersion = aggregator.clustersVersion;
      sentAt = now;
      call.write({
        clusters: sendAll ? [] : aggregator.clusterNames(),
        send_all_clusters: sendAll,
        load_reporting_interval: protoDuration(this.options.intervalMs),
        report_endpoint_granularity: this.options.endpointGranularity,
      });
    };
    call.on('data', (bytes: Buffer) => {
      if (stream.finished) return;
      const now = clock();
      const message = this.decode(stream, bytes, now, wire.decodeLoadStats, loadStatsRequestType);
      if (message === undefined) return;
      const first = stream.nodeId === undefined;
      if (!this.identify(stream, message.node, 'node', () => false)) return;
      if (first) {
        sendAll = (message.node?.client_features ?? []).includes(sendAllClustersFeature);
        respond(now);
      } else if (!sendAll && aggregator.clustersVersion !== sentVersion && now - sentAt >= this.options.intervalMs) {
        // A client that cannot be told "send all" gets the list of Switchyard clusters, kept current.
        respond(now);
      }
      const outcome = aggregator.ingest(stream.id, { source: 'lrs', clusters: message.cluster_stats ?? [] }, now);
      this.count(stream, outcome);
    });
    call.on('end', () => stream.finish());
    call.on('cancelled', () => stream.finish());
    call.on('error', () => stream.finish());
  };

  private start(
    source: Source,
    call: Pick<grpc.ServerReadableStream<unknown, unknown>, 'getPeer'>,
    respond: (status?: Status) => void,
  ): IngestStream {
    const { metrics, logger, limits, clock, aggregator } = this.options;
    const id = `${source}-${++this.nextId}`;
    const streamLogger = logger.child({ stream: id, source, peer: call.getPeer() });
    const stream: IngestStream = {
      id,
      source,
      guard: new StreamGuard(source, limits, metrics, streamLogger, clock()),
      nodeId: undefined,
      finished: false,
      finish: (status) => {
        if (stream.finished) return;
        stream.finished = true;
        this.streams.delete(stream);
        metrics.streamsOpen.dec({ source });
        aggregator.close(id);
        streamLogger.debug({ node: stream.nodeId, status: status?.code }, 'stream ended');
        respond(status);
      },
    };
    this.streams.add(stream);
    metrics.streamsOpen.inc({ source });
    return stream;
  }

  /** Size and rate checks, then the protobuf decode; a message that is not protobuf of its type closes the stream. */
  private decode<T>(stream: IngestStream, bytes: Buffer, now: number, decode: (bytes: Uint8Array) => T, typeName: string): T | undefined {
    if (!stream.guard.admit(bytes, now)) return undefined;
    try {
      return decode(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.options.metrics.decodeErrors.inc({ source: stream.source });
      stream.guard.warnOnce(
        'decode_error',
        { bytes: bytes.byteLength, error: reason },
        `message is not a valid ${typeName}; closing the stream`,
      );
      stream.finish({ code: grpc.status.INVALID_ARGUMENT, details: `cannot decode ${typeName}: ${reason}` });
      return undefined;
    }
  }

  /** The first message of a stream names the node; without one the stream cannot be attributed and is closed. */
  private identify(stream: IngestStream, node: DecodedNode | null | undefined, field: string, countersAsDeltas: () => boolean): boolean {
    if (stream.nodeId !== undefined) return true;
    const nodeId = node?.id ?? '';
    if (nodeId === '') {
      stream.guard.reject('missing_node', {}, `first message has no ${field}.id; closing the stream`);
      stream.finish({
        code: grpc.status.INVALID_ARGUMENT,
        details: `the first message of a stream must carry ${field} with a non-empty id`,
      });
      return false;
    }
    stream.nodeId = nodeId;
    this.options.aggregator.open(stream.id, stream.source, nodeId, { countersAsDeltas: countersAsDeltas() });
    stream.guard.logger.info({ node: nodeId }, 'stream opened');
    return true;
  }

  private countersAsDeltas(node: DecodedNode | null | undefined): boolean {
    const value = node?.metadata?.fields?.[countersAsDeltasMetadataKey];
    if (typeof value?.boolValue === 'boolean') return value.boolValue;
    if (value?.stringValue === 'true' || value?.stringValue === 'false') return value.stringValue === 'true';
    return this.options.countersAsDeltas;
  }

  private count(stream: IngestStream, outcome: IngestOutcome): void {
    const { metrics } = this.options;
    if (outcome.accepted > 0) metrics.clusterStats.inc({ source: stream.source }, outcome.accepted);
    for (const [reason, count] of Object.entries(outcome.dropped)) {
      if (count === 0) continue;
      metrics.droppedClusters.inc({ source: stream.source, reason }, count);
      if (reason !== 'not_switchyard') stream.guard.warnOnce(reason, { clusters: count }, `dropped cluster reports: ${reason}`);
    }
  }
}
