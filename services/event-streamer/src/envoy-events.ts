import { parseClusterName, type EnvoyEvent } from '@switchyard/shared';

/**
 * Turns Envoy's health-check events (`envoy.data.core.v3.HealthCheckEvent`) and outlier
 * events (`envoy.data.cluster.v3.OutlierDetectionEvent`) into `envoy` bus events. They arrive
 * as proto-JSON objects: from EventReportingService (decoded Any) or as JSON lines from the
 * files Envoy writes (health-check event sink `file`, outlier `event_log_path`), which use
 * snake_case field names; camelCase is accepted too. Pure.
 */

export type EnvoyEventType = EnvoyEvent['type'];
export type EnvoyEventSource = EnvoyEvent['source'];
export type DropReason = 'malformed' | 'unknown_cluster' | 'unknown_type';
export type Conversion = { ok: true; event: EnvoyEvent } | { ok: false; reason: DropReason; detail: string };

type Json = Record<string, unknown>;

const healthCheckEventKinds = [
  'eject_unhealthy_event',
  'add_healthy_event',
  'successful_health_check_event',
  'health_check_failure_event',
  'degraded_healthy_host',
  'no_longer_degraded_host',
];

export function toEnvoyEvent(
  detail: Json,
  type: EnvoyEventType,
  source: EnvoyEventSource,
  node: string | null,
  receivedAt: number,
): Conversion {
  const cluster = field(detail, 'cluster_name');
  if (typeof cluster !== 'string' || cluster === '') return { ok: false, reason: 'malformed', detail: 'no cluster_name' };
  const ref = parseClusterName(cluster);
  if (ref === undefined) return { ok: false, reason: 'unknown_cluster', detail: `cluster ${cluster} is not a Switchyard revision` };
  let endpoint: EnvoyEvent['endpoint'];
  if (type === 'health_check') {
    if (!healthCheckEventKinds.some((kind) => field(detail, kind) !== undefined)) {
      return { ok: false, reason: 'malformed', detail: 'health check event names no event' };
    }
    endpoint = socketAddress(field(detail, 'host'));
  } else {
    const url = field(detail, 'upstream_url');
    if (typeof url !== 'string' || field(detail, 'action') === undefined) {
      return { ok: false, reason: 'malformed', detail: 'outlier event needs upstream_url and action' };
    }
    endpoint = hostPort(url);
  }
  return {
    ok: true,
    event: {
      schemaVersion: 1,
      ...ref,
      source,
      type,
      node,
      endpoint,
      detail,
      ts: timestampOf(field(detail, 'timestamp')) ?? receivedAt,
    },
  };
}

/** Parses one line of an Envoy event log; which kind of event it is follows from its fields. */
export function fromLogLine(line: string, node: string | null, receivedAt: number): Conversion {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'malformed', detail: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { ok: false, reason: 'malformed', detail: 'not an object' };
  const detail = parsed as Json;
  if (field(detail, 'upstream_url') !== undefined) return toEnvoyEvent(detail, 'outlier_detection', 'outlier_log', node, receivedAt);
  if (field(detail, 'health_checker_type') !== undefined || field(detail, 'host') !== undefined) {
    return toEnvoyEvent(detail, 'health_check', 'health_check_log', node, receivedAt);
  }
  return { ok: false, reason: 'unknown_type', detail: 'neither a health check nor an outlier detection event' };
}

/** A field by its proto name, or its JSON (lowerCamelCase) name. */
function field(object: unknown, snake: string): unknown {
  if (typeof object !== 'object' || object === null) return undefined;
  const o = object as Json;
  return o[snake] ?? o[snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())];
}

function socketAddress(address: unknown): EnvoyEvent['endpoint'] {
  const socket = field(address, 'socket_address');
  const host = field(socket, 'address');
  const port = Number(field(socket, 'port_value'));
  return typeof host === 'string' && Number.isInteger(port) && port > 0 ? { address: host, port } : null;
}

/** "10.0.0.1:8080" or "[fd00::1]:8080", as Envoy prints upstream addresses. */
function hostPort(url: string): EnvoyEvent['endpoint'] {
  const match = /^(?:\w+:\/\/)?(?:\[([^\]]+)\]|([^:/]+)):(\d+)$/.exec(url);
  if (match === null) return null;
  const port = Number(match[3]);
  return port > 0 && port < 65536 ? { address: (match[1] ?? match[2]) as string, port } : null;
}

/** RFC 3339 text (proto JSON) or {seconds, nanos} (decoded proto); undefined if neither. */
function timestampOf(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  const seconds = Number(field(value, 'seconds'));
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return Math.round(seconds * 1000 + Number(field(value, 'nanos') ?? 0) / 1e6);
}
