import type * as grpc from '@grpc/grpc-js';
import { envoyRoot, grpcService, loadGrpcPackage, lookupType, protoFiles } from '@switchyard/shared';
import type { DecodedLoadStatsRequest, DecodedStreamMetricsMessage } from './decoded.js';
import type { MetricTypeValues } from './metrics-reader.js';

/**
 * The two Envoy services the sink implements, with request deserialization taken over: grpc-js
 * turns a deserializer exception into an opaque INTERNAL status, so requests arrive as raw
 * bytes and each stream decodes them itself (after its size and rate checks) and closes with
 * a clear INVALID_ARGUMENT when they are not protobuf of the right type.
 */
export interface Wire {
  metricsService: grpc.ServiceDefinition;
  lrsService: grpc.ServiceDefinition;
  decodeMetrics(bytes: Uint8Array): DecodedStreamMetricsMessage;
  decodeLoadStats(bytes: Uint8Array): DecodedLoadStatsRequest;
  metricTypes: MetricTypeValues;
}

export const metricsMessageType = 'envoy.service.metrics.v3.StreamMetricsMessage';
export const loadStatsRequestType = 'envoy.service.load_stats.v3.LoadStatsRequest';

let wire: Wire | undefined;

export function loadWire(): Wire {
  if (wire !== undefined) return wire;
  const pkg = loadGrpcPackage([protoFiles.metrics, protoFiles.lrs]);
  const metricsRequest = lookupType(metricsMessageType);
  const loadStatsRequest = lookupType(loadStatsRequestType);
  wire = {
    metricsService: withRawRequests(grpcService(pkg, 'envoy.service.metrics.v3.MetricsService').service),
    lrsService: withRawRequests(grpcService(pkg, 'envoy.service.load_stats.v3.LoadReportingService').service),
    decodeMetrics: (bytes) => metricsRequest.decode(bytes) as unknown as DecodedStreamMetricsMessage,
    decodeLoadStats: (bytes) => loadStatsRequest.decode(bytes) as unknown as DecodedLoadStatsRequest,
    metricTypes: envoyRoot().lookupEnum('io.prometheus.client.MetricType').values as unknown as MetricTypeValues,
  };
  return wire;
}

function withRawRequests(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [name, { ...method, requestDeserialize: (bytes: Buffer) => bytes }]),
  );
}
