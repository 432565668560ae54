import { protoDuration, typeUrlPrefix } from '@switchyard/shared';
import type { ProtoObject } from '../../resources.js';

/** Small builders for the proto-JSON object form that shared `packAny` encodes. */

/** Envoy type names of the typed configs the translator emits. */
export const EnvoyType = {
  HttpConnectionManager: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  Router: 'envoy.extensions.filters.http.router.v3.Router',
  LocalRateLimit: 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  Lua: 'envoy.extensions.filters.http.lua.v3.Lua',
  EarlyHeaderMutation: 'envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation',
  TlsInspector: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  DownstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  StdoutAccessLog: 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  OpenTelemetryConfig: 'envoy.config.trace.v3.OpenTelemetryConfig',
  HttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  LeastRequest: 'envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
  RoundRobin: 'envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
  WrrLocality: 'envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality',
  PreviousHostsPredicate: 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  HealthCheckEventFileSink: 'envoy.extensions.health_check.event_sinks.file.v3.HealthCheckEventFileSink',
} as const;

/** A nested Any: `{"@type": ..., ...fields}`. */
export function typed(typeName: string, fields: ProtoObject = {}): ProtoObject {
  return { '@type': typeUrlPrefix + typeName, ...fields };
}

/** A UInt32Value / BoolValue wrapper. */
export function wrapped<T extends number | boolean>(value: T): { value: T } {
  return { value };
}

export function duration(ms: number): { seconds: number; nanos: number } {
  return protoDuration(ms);
}

/** Resources and secrets all come over the ADS stream. */
export function adsSource(): ProtoObject {
  return { ads: {}, resource_api_version: 'V3' };
}

/** A percentage that is always on, with a runtime key so an operator can dial it down per Envoy. */
export function alwaysOn(runtimeKey: string): ProtoObject {
  return { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: runtimeKey };
}

/** A google.protobuf.Struct of string values, in the object form protobufjs encodes (its bundled struct.proto is camelCase). */
export function stringStruct(values: Record<string, string>): ProtoObject {
  return { fields: Object.fromEntries(Object.entries(values).map(([key, value]) => [key, { stringValue: value }])) };
}
