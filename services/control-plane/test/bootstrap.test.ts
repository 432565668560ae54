import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RE2 } from 're2-wasm';
import { parse } from 'yaml';
import { checkMessage, lookupType } from '@switchyard/shared';
import { EnvoyListener } from '../src/translator/index.js';

/**
 * deploy/envoy/bootstrap.yaml is Envoy's YAML, i.e. proto3 JSON ("1s" durations, bare numbers
 * for wrappers, free-form Structs). It is brought into the object form protobufjs encodes,
 * checked field by field against envoy.config.bootstrap.v3.Bootstrap (unknown fields fail),
 * encoded to binary and decoded again; the key settings are read from the decoded message.
 */
const bootstrapFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy', 'envoy', 'bootstrap.yaml');
const bootstrapType = 'envoy.config.bootstrap.v3.Bootstrap';

type MessageType = ReturnType<typeof lookupType>;
type Json = unknown;

const wrappers = /^google\.protobuf\.(U?Int(32|64)|Bool|String|Double|Float|Bytes)Value$/;

function structValue(value: Json): Json {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(value)) return { listValue: { values: value.map(structValue) } };
  if (typeof value === 'object') return { structValue: struct(value as Record<string, Json>) };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  return { stringValue: String(value) };
}

function struct(value: Record<string, Json>): Json {
  return { fields: Object.fromEntries(Object.entries(value).map(([key, v]) => [key, structValue(v)])) };
}

/** proto3 JSON → protobufjs object form, guided by the message type; unknown fields are kept for checkMessage to report. */
function fromProto3Json(type: MessageType, value: Json): Json {
  const name = type.fullName.replace(/^\./, '');
  if (name === 'google.protobuf.Duration' && typeof value === 'string') {
    const [, whole, fraction = ''] = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(value) ?? [];
    if (whole === undefined) throw new Error(`bad duration ${value}`);
    return { seconds: Number(whole), nanos: Number(fraction.padEnd(9, '0')) };
  }
  if (wrappers.test(name) && typeof value !== 'object') return { value };
  if (name === 'google.protobuf.Struct') return struct(value as Record<string, Json>);
  if (name === 'google.protobuf.Any') {
    const { '@type': typeUrl, ...rest } = value as Record<string, Json>;
    return { '@type': typeUrl, ...(fromProto3Json(lookupType(String(typeUrl)), rest) as object) };
  }
  if (typeof value !== 'object' || value === null) return value;
  const converted: Record<string, Json> = {};
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fields[key];
    const resolved = field?.resolve().resolvedType;
    if (field === undefined || resolved === null || !('fields' in resolved)) {
      converted[key] = fieldValue;
    } else if (field.map) {
      converted[key] = Object.fromEntries(Object.entries(fieldValue as object).map(([k, v]) => [k, fromProto3Json(resolved, v)]));
    } else if (field.repeated) {
      converted[key] = (fieldValue as Json[]).map((item) => fromProto3Json(resolved, item));
    } else {
      converted[key] = fromProto3Json(resolved, fieldValue);
    }
  }
  return converted;
}

interface Bootstrap {
  node?: unknown;
  admin: { address: { socket_address: { address: string; port_value: number } } };
  dynamic_resources: {
    ads_config: { api_type: string; transport_api_version: string; grpc_services: { envoy_grpc: { cluster_name: string } }[] };
    cds_config: { ads?: object };
    lds_config: { ads?: object };
  };
  static_resources: {
    clusters: {
      name: string;
      load_assignment: {
        endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[];
      };
    }[];
  };
  cluster_manager: { load_stats_config: { api_type: string; grpc_services: { envoy_grpc: { cluster_name: string } }[] } };
  hds_config: { api_type: string; grpc_services: { envoy_grpc: { cluster_name: string } }[] };
  stats_sinks: { name: string; typed_config: { '@type': string; grpc_service: { envoy_grpc: { cluster_name: string } } } }[];
  stats_flush_interval: { seconds: string; nanos: number };
  stats_config: { stats_matcher: { inclusion_list: { patterns: { prefix?: string; safe_regex?: { regex: string } }[] } } };
  overload_manager: {
    resource_monitors: { name: string; typed_config: { '@type': string } }[];
    actions: { name: string; triggers: { name: string }[] }[];
  };
  layered_runtime: { layers: { name: string; static_layer?: { fields: Record<string, { numberValue?: number }> } }[] };
}

function loadBootstrap(): { converted: Json; decoded: Bootstrap } {
  const type = lookupType(bootstrapType);
  const converted = fromProto3Json(type, parse(readFileSync(bootstrapFile, 'utf8')));
  const bytes = type.encode(type.fromObject(converted as Record<string, unknown>)).finish();
  const decoded = type.toObject(type.decode(bytes), { longs: String, enums: String, json: true }) as unknown as Bootstrap;
  return { converted, decoded };
}

describe('deploy/envoy/bootstrap.yaml', () => {
  const { converted, decoded } = loadBootstrap();
  const clusterAddress = (name: string) =>
    decoded.static_resources.clusters.find((c) => c.name === name)?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address
      .socket_address;

  it('is a valid Bootstrap with no unknown fields', () => {
    expect(checkMessage(bootstrapType, converted)).toEqual([]);
  });

  it('rejects an unknown field (the check is not vacuous)', () => {
    const withTypo = fromProto3Json(lookupType(bootstrapType), {
      ...(parse(readFileSync(bootstrapFile, 'utf8')) as object),
      stats_flush_intervall: '1s',
    });
    expect(checkMessage(bootstrapType, withTypo)).toEqual(['stats_flush_intervall: unknown field of envoy.config.bootstrap.v3.Bootstrap']);
  });

  it('leaves node id and cluster to the command line', () => {
    expect(decoded.node).toBeUndefined();
  });

  it('gets its config over delta ADS from control-plane:18000', () => {
    expect(decoded.dynamic_resources.ads_config).toMatchObject({
      api_type: 'DELTA_GRPC',
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'control-plane' } }],
    });
    expect(decoded.dynamic_resources.cds_config.ads).toBeDefined();
    expect(decoded.dynamic_resources.lds_config.ads).toBeDefined();
    expect(clusterAddress('control-plane')).toEqual({ address: 'control-plane', port_value: 18000 });
  });

  it('sends stats (MetricsService) and load reports (LRS) to stats-sink:18001 every second', () => {
    expect(decoded.stats_sinks).toMatchObject([
      {
        name: 'envoy.stat_sinks.metrics_service',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig',
          grpc_service: { envoy_grpc: { cluster_name: 'stats-sink' } },
        },
      },
    ]);
    expect(decoded.cluster_manager.load_stats_config).toMatchObject({
      api_type: 'GRPC',
      grpc_services: [{ envoy_grpc: { cluster_name: 'stats-sink' } }],
    });
    expect(clusterAddress('stats-sink')).toEqual({ address: 'stats-sink', port_value: 18001 });
    expect(decoded.stats_flush_interval).toEqual({ seconds: '1', nanos: 0 });
  });

  it('takes health-check assignments (HDS) from event-streamer:18002', () => {
    expect(decoded.hds_config).toMatchObject({ api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'event-streamer' } }] });
    expect(clusterAddress('event-streamer')).toEqual({ address: 'event-streamer', port_value: 18002 });
  });

  it('serves admin on localhost only', () => {
    expect(decoded.admin.address.socket_address.address).toBe('127.0.0.1');
  });

  it('watches heap and downstream connections, with actions on configured monitors only', () => {
    const monitors = decoded.overload_manager.resource_monitors.map((m) => m.name);
    expect(monitors).toEqual(['envoy.resource_monitors.fixed_heap', 'envoy.resource_monitors.global_downstream_max_connections']);
    const actions = decoded.overload_manager.actions;
    expect(actions.map((a) => a.name)).toContain('envoy.overload_actions.stop_accepting_requests');
    for (const action of actions) for (const trigger of action.triggers) expect(monitors).toContain(trigger.name);
  });

  it('limits connections per listener, for the listeners the translator names', () => {
    const runtime = decoded.layered_runtime.layers.find((layer) => layer.static_layer)?.static_layer?.fields ?? {};
    for (const listener of Object.values(EnvoyListener)) {
      expect(runtime[`envoy.resource_limits.listener.${listener}.connection_limit`]?.numberValue).toBeGreaterThan(0);
    }
    expect(runtime['re2.max_program_size.error_level']?.numberValue).toBeGreaterThanOrEqual(1000);
  });

  describe('stats matcher', () => {
    const patterns = decoded.stats_config.stats_matcher.inclusion_list.patterns;
    const kept = (stat: string) =>
      patterns.some((p) => (p.prefix !== undefined ? stat.startsWith(p.prefix) : new RE2(p.safe_regex?.regex ?? '', 'u').test(stat)));

    it.each([
      'cluster.sy_acme_api_v1.upstream_rq_active',
      'cluster.sy_acme_api_v1.upstream_rq_completed',
      'cluster.sy_acme_api_v1.upstream_rq_2xx',
      'cluster.sy_acme_api_v1.upstream_rq_5xx',
      'cluster.sy_acme_api_v1.health_check.healthy',
      'cluster.sy_acme_api_v1.membership_healthy',
      'cluster.sy_acme_api_v1.outlier_detection.ejections_active',
      'http.http.downstream_rq_active',
      'acme_api.http_local_rate_limit.rate_limited',
      'control_plane.connected_state',
      'overload.envoy.overload_actions.stop_accepting_requests.active',
    ])('keeps %s', (stat) => {
      expect(kept(stat)).toBe(true);
    });

    it.each([
      'cluster.sy_acme_api_v1.upstream_cx_rx_bytes_total',
      'cluster.sy_acme_api_v1.upstream_rq_200',
      'http.http.downstream_cx_ssl_total',
      'runtime.load_success',
    ])('drops %s', (stat) => {
      expect(kept(stat)).toBe(false);
    });
  });
});
