import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const xdsDeps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/**
 * Where protos are found: Envoy's API as shipped inside @grpc/grpc-js-xds (never copied into
 * this repo), plus the few protos of Switchyard's own (the Prometheus model, the Watch API).
 */
export const protoIncludeDirs = [
  join(xdsDeps, 'envoy-api'),
  join(xdsDeps, 'xds'),
  join(xdsDeps, 'googleapis'),
  join(xdsDeps, 'protoc-gen-validate'),
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto'),
  join(dirname(fileURLToPath(import.meta.url)), '..', 'proto'),
].filter((dir, i, all) => existsSync(dir) && all.indexOf(dir) === i);

/** Every proto file Switchyard encodes, decodes or serves. */
export const protoFiles = {
  ads: 'envoy/service/discovery/v3/ads.proto',
  cds: 'envoy/service/cluster/v3/cds.proto',
  eds: 'envoy/service/endpoint/v3/eds.proto',
  lds: 'envoy/service/listener/v3/lds.proto',
  rds: 'envoy/service/route/v3/rds.proto',
  srds: 'envoy/service/route/v3/srds.proto',
  extensionConfig: 'envoy/config/core/v3/extension.proto',
  earlyHeaderMutation: 'envoy/extensions/http/early_header_mutation/header_mutation/v3/header_mutation.proto',
  sds: 'envoy/service/secret/v3/sds.proto',
  lrs: 'envoy/service/load_stats/v3/lrs.proto',
  metrics: 'envoy/service/metrics/v3/metrics_service.proto',
  hds: 'envoy/service/health/v3/hds.proto',
  eventReporting: 'envoy/service/event_reporting/v3/event_reporting_service.proto',
  bootstrap: 'envoy/config/bootstrap/v3/bootstrap.proto',
  httpConnectionManager: 'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  router: 'envoy/extensions/filters/http/router/v3/router.proto',
  localRateLimit: 'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  lua: 'envoy/extensions/filters/http/lua/v3/lua.proto',
  tls: 'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  tlsInspector: 'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  fileAccessLog: 'envoy/extensions/access_loggers/file/v3/file.proto',
  streamAccessLog: 'envoy/extensions/access_loggers/stream/v3/stream.proto',
  upstreamHttp: 'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  leastRequest: 'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  roundRobin: 'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  wrrLocality: 'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  openTelemetryTracer: 'envoy/config/trace/v3/opentelemetry.proto',
  previousHosts: 'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  healthCheckEventFileSink: 'envoy/extensions/health_check/event_sinks/file/v3/file.proto',
  healthCheckEvent: 'envoy/data/core/v3/health_check_event.proto',
  outlierDetectionEvent: 'envoy/data/cluster/v3/outlier_detection_event.proto',
  fixedHeap: 'envoy/extensions/resource_monitors/fixed_heap/v3/fixed_heap.proto',
  downstreamConnections: 'envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto',
  metricsSink: 'envoy/config/metrics/v3/metrics_service.proto',
  csds: 'envoy/service/status/v3/csds.proto',
  watch: 'switchyard/watch/v1/watch.proto',
  demoEcho: 'switchyard/demo/v1/echo.proto',
} as const;

const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: protoIncludeDirs,
};

/** Loads gRPC service definitions (for servers and clients) from the given proto files. */
export function loadGrpcPackage(files: string[]): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(files.filter(fileExists), loaderOptions));
}

function fileExists(file: string): boolean {
  return protoIncludeDirs.some((dir) => existsSync(join(dir, file)));
}

/** Looks up a service constructor such as `envoy.service.discovery.v3.AggregatedDiscoveryService`. */
export function grpcService(pkg: grpc.GrpcObject, fullName: string): grpc.ServiceClientConstructor {
  const found = fullName.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], pkg);
  if (typeof found !== 'function') throw new Error(`gRPC service ${fullName} not found in the loaded protos`);
  return found as grpc.ServiceClientConstructor;
}

let root: protobuf.Root | undefined;

/** One protobufjs Root with every Envoy type Switchyard uses, for encoding resources and checking them. */
export function envoyRoot(): protobuf.Root {
  if (root !== undefined) return root;
  addCommonProtos();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const dir of protoIncludeDirs) {
      const full = join(dir, target);
      if (existsSync(full)) return full;
    }
    return target;
  };
  r.loadSync(Object.values(protoFiles).filter(fileExists), { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

function addCommonProtos(): void {
  for (const name of ['descriptor', 'api', 'source_context', 'type']) {
    const json = require(`protobufjs/google/protobuf/${name}.json`) as {
      nested: { google: { nested: { protobuf: { nested: protobuf.INamespace['nested'] } } } };
    };
    protobuf.common(name, json.nested.google.nested.protobuf.nested as Record<string, protobuf.AnyNestedObject>);
  }
}

export const typeUrlPrefix = 'type.googleapis.com/';

/** Type URLs of the resources the xDS server serves. */
export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  /** SRDS: which RouteConfiguration serves a request, by a key built from its headers. */
  ScopedRouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration',
  /** ECDS: the config of an HTTP filter, updated without touching the listener that holds it. */
  ExtensionConfig: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type XdsTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

export function lookupType(typeUrlOrName: string): protobuf.Type {
  const name = typeUrlOrName.startsWith(typeUrlPrefix) ? typeUrlOrName.slice(typeUrlPrefix.length) : typeUrlOrName;
  return envoyRoot().lookupType(name);
}

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/**
 * Encodes a message given in proto-JSON object form (snake_case field names, nested Any as
 * `{"@type": ..., ...}` exactly as in Envoy's YAML) into a `google.protobuf.Any`.
 */
export function packAny(typeUrl: string, message: Record<string, unknown>): AnyMessage {
  const type = lookupType(typeUrl);
  const value = type.encode(type.fromObject(message)).finish();
  return { type_url: typeUrl.startsWith(typeUrlPrefix) ? typeUrl : typeUrlPrefix + typeUrl, value };
}

/** Decodes an Any back into proto-JSON object form (nested Any as `@type` objects). */
export function unpackAny(any: AnyMessage): Record<string, unknown> {
  const type = lookupType(any.type_url);
  return type.toObject(type.decode(any.value), { longs: String, enums: String, json: true }) as Record<string, unknown>;
}

/**
 * Checks a proto-JSON object against an Envoy message type and returns every problem with
 * its field path. protobufjs's fromObject silently ignores unknown fields; this does not,
 * so a typo in generated config fails a test instead of vanishing on the wire.
 */
export function checkMessage(typeUrlOrName: string, message: unknown): string[] {
  const errors: string[] = [];
  checkAgainst(lookupType(typeUrlOrName), message, '', errors);
  return errors;
}

const wellKnownScalars = new Set([
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.UInt32Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.Int64Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.BytesValue',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
]);

function checkAgainst(type: protobuf.Type, value: unknown, path: string, errors: string[]): void {
  const fullName = type.fullName.replace(/^\./, '');
  if (fullName === 'google.protobuf.Any') {
    checkAny(value, path, errors);
    return;
  }
  if (wellKnownScalars.has(fullName) && typeof value !== 'object') return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push(`${path || '(root)'}: expected an object for ${fullName}`);
    return;
  }
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fields[key];
    const at = path ? `${path}.${key}` : key;
    if (field === undefined) {
      errors.push(`${at}: unknown field of ${fullName}`);
      continue;
    }
    field.resolve();
    if (field.map) {
      if (typeof fieldValue !== 'object' || fieldValue === null) errors.push(`${at}: expected a map`);
      else for (const [k, v] of Object.entries(fieldValue)) checkField(field, v, `${at}[${k}]`, errors);
    } else if (field.repeated) {
      if (!Array.isArray(fieldValue)) errors.push(`${at}: expected a list`);
      else fieldValue.forEach((item, i) => checkField(field, item, `${at}[${i}]`, errors));
    } else {
      checkField(field, fieldValue, at, errors);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => (value as Record<string, unknown>)[f.name] !== undefined);
    if (set.length > 1)
      errors.push(`${path || '(root)'}: fields ${set.map((f) => f.name).join(', ')} are one-of ${oneof.name}; set only one`);
  }
}

function checkField(field: protobuf.Field, value: unknown, path: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkAgainst(resolved, value, path, errors);
  } else if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string' && !(value in resolved.values))
      errors.push(`${path}: "${value}" is not a value of ${resolved.fullName.slice(1)}`);
    if (typeof value === 'number' && !Object.values(resolved.values).includes(value))
      errors.push(`${path}: ${value} is not a value of ${resolved.fullName.slice(1)}`);
  } else if (field.type === 'string' && typeof value !== 'string') {
    errors.push(`${path}: expected a string`);
  } else if (field.type === 'bool' && typeof value !== 'boolean') {
    errors.push(`${path}: expected a boolean`);
  }
}

function checkAny(value: unknown, path: string, errors: string[]): void {
  if (typeof value !== 'object' || value === null) {
    errors.push(`${path}: expected an Any object`);
    return;
  }
  const { ['@type']: typeUrl, ...rest } = value as Record<string, unknown>;
  if (typeof typeUrl !== 'string') {
    errors.push(`${path}: Any needs "@type"`);
    return;
  }
  let inner: protobuf.Type;
  try {
    inner = lookupType(typeUrl);
  } catch {
    errors.push(`${path}: unknown type ${typeUrl}`);
    return;
  }
  checkAgainst(inner, rest, path, errors);
}
