import { isIP } from 'node:net';
import { z } from 'zod';

/** Raised when environment variables do not match a service's config schema; lists every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const millis = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
const ipAddress = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => isIP(v) !== 0, 'must be an IP address');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

function hostPort(value: string): { address: string; port: number } | undefined {
  const at = value.lastIndexOf(':');
  const address = value.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(value.slice(at + 1));
  if (at < 0 || isIP(address) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { address, port };
}

/** Settings every service shares: where NATS is, its admin port, log level. */
export const commonEnv = {
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  /** JetStream replicas for Switchyard's streams and buckets: 1 for one server, 3 in a production cluster. */
  NATS_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
};

export const controlPlaneEnv = z.object({
  ...commonEnv,
  CONTROL_PLANE_GRPC_PORT: port(18000),
  CONTROL_PLANE_ADMIN_PORT: port(9401),
  API_PORT: port(8080),
  SWITCHYARD_ADMIN_TOKEN: optionalString,
  SWITCHYARD_ENDPOINT_CIDRS: z.string().default(''),
  /** How long an endpoint may stay unhealthy before EDS drops it. */
  SWITCHYARD_REAP_UNHEALTHY_MS: millis(60_000),
  /** Upper bound on a stream's connection age; jittered so a fleet reconnects gradually. */
  XDS_MAX_CONNECTION_AGE_MS: millis(30 * 60_000),
  /** Where the Envoys' shared listeners bind (sent to them over LDS). */
  ENVOY_LISTENER_ADDRESS: ipAddress('0.0.0.0'),
  ENVOY_HTTP_PORT: port(8080),
  ENVOY_HTTPS_PORT: port(8443),
  /** The ports clients connect to (a load balancer or Kubernetes Service in front), sent as X-Forwarded-Port. */
  ENVOY_HTTP_PUBLIC_PORT: port(80),
  ENVOY_HTTPS_PUBLIC_PORT: port(443),
  /**
   * `ip:port` of the activator (a Kubernetes Service's cluster IP, or 127.0.0.1 locally): EDS
   * points HTTP revisions that scale to zero there while they have no ready instance. Unset: no activator.
   */
  ACTIVATOR_ADDRESS: optionalString
    .refine((v) => v === undefined || hostPort(v) !== undefined, 'must be <IP address>:<port>')
    .transform((v) => (v === undefined ? undefined : hostPort(v))),
});
export type ControlPlaneConfig = z.infer<typeof controlPlaneEnv>;

export const statsSinkEnv = z.object({
  ...commonEnv,
  STATS_SINK_GRPC_PORT: port(18001),
  STATS_SINK_ADMIN_PORT: port(9402),
  LOAD_REPORTING_INTERVAL_MS: millis(1000),
  /** A node that has not reported for this long stops counting. */
  STATS_STALE_AFTER_MS: millis(5000),
  STATS_MAX_SERIES: z.coerce.number().int().positive().default(10_000),
  /** Messages larger than this (default 16 MiB) are dropped unread (MetricsService resends every stat each flush). */
  STATS_MAX_MESSAGE_BYTES: z.coerce.number().int().positive().default(16_777_216),
  /** Per stream; Envoy sends one message per flush or report interval, so more is a flood. */
  STATS_MAX_STREAM_MESSAGES_PER_S: z.coerce.number().positive().default(20),
  STATS_MAX_CLUSTERS_PER_STREAM: z.coerce.number().int().positive().default(20_000),
  STATS_MAX_REVISIONS: z.coerce.number().int().positive().default(50_000),
  /** A revision with no reporting node is published with zeros for this long, then forgotten (and its series removed). */
  STATS_REVISION_IDLE_MS: millis(10 * 60_000),
  /** Default for MetricsService streams; a node overrides it with node metadata `report_counters_as_deltas`. */
  STATS_COUNTERS_AS_DELTAS: flag(false),
  /** Ask LRS clients for per-endpoint stats (report_endpoint_granularity). */
  LRS_ENDPOINT_GRANULARITY: flag(false),
});
export type StatsSinkConfig = z.infer<typeof statsSinkEnv>;

export const eventStreamerEnv = z.object({
  ...commonEnv,
  EVENT_STREAMER_GRPC_PORT: port(18002),
  EVENT_STREAMER_ADMIN_PORT: port(9403),
  HDS_CHECKERS_PER_ENDPOINT: z.coerce.number().int().positive().default(3),
  SWITCHYARD_ADMIN_TOKEN: optionalString,
  /** Comma-separated JSON-lines files written by Envoy (health check `file` sink, outlier `event_log_path`). */
  EVENT_TAIL_FILES: z.string().default(''),
  /** The node id of the Envoy whose event logs are tailed, named in its events. */
  EVENT_TAIL_NODE: optionalString,
  /** `server`: HDS, EventReporting and Watch (and tails EVENT_TAIL_FILES if set); `tailer`: only follows the files, beside an Envoy. */
  EVENT_STREAMER_MODE: z.enum(['server', 'tailer']).default('server'),
  /** How often Envoys send HDS results (the specifier's interval); a checker silent for three intervals stops voting. */
  HDS_REPORT_INTERVAL_MS: millis(1000),
  /** A Watch stream that stays full this long (the client does not read) is ended with RESOURCE_EXHAUSTED. */
  WATCH_SLOW_WATCHER_MS: millis(10_000),
});
export type EventStreamerConfig = z.infer<typeof eventStreamerEnv>;

export const autoscalerEnv = z.object({
  ...commonEnv,
  AUTOSCALER_ADMIN_PORT: port(9404),
  INSTANCE_PROVIDER: z.enum(['local', 'static']).default('local'),
  /** Identity of this replica in the leader lease. */
  AUTOSCALER_REPLICA_ID: optionalString,
  AUTOSCALER_LEASE_TTL_MS: millis(5000),
  DRAIN_TIMEOUT_MS: millis(30_000),
  /** Address local instances listen on and are published with. */
  LOCAL_INSTANCE_HOST: z.string().default('127.0.0.1'),
  /** How long a local instance may take to pass its first health check. */
  INSTANCE_START_TIMEOUT_MS: millis(60_000),
  /** SIGTERM to SIGKILL for a local instance being stopped. */
  INSTANCE_STOP_TIMEOUT_MS: millis(10_000),
  /** Load samples stamped further ahead of this replica's clock are dropped. */
  LOAD_MAX_CLOCK_SKEW_MS: millis(2000),
});
export type AutoscalerConfig = z.infer<typeof autoscalerEnv>;

export const activatorEnv = z.object({
  ...commonEnv,
  /** Where the activator takes the requests Envoy sends it (HTTP/1.1). */
  ACTIVATOR_PORT: port(8012),
  ACTIVATOR_ADMIN_PORT: port(9405),
  /** Identity of this replica in its pokes (default: host name and process id). */
  ACTIVATOR_REPLICA_ID: optionalString,
  /** Requests held per revision at most; more are answered 503 with retry-after. */
  ACTIVATOR_MAX_HELD: z.coerce.number().int().positive().default(1000),
  /** How long a request is held when its route sent no timeout. */
  ACTIVATOR_DEFAULT_TIMEOUT_MS: millis(120_000),
  /** The retry-after (seconds) of a 503 beyond the bound. */
  ACTIVATOR_RETRY_AFTER_S: z.coerce.number().int().positive().default(1),
  /** A burst arriving within this window after the first held request becomes one poke (the autoscaler sizes for all of it). */
  ACTIVATOR_POKE_COALESCE_MS: z.coerce.number().int().min(0).max(1000).default(20),
});
export type ActivatorConfig = z.infer<typeof activatorEnv>;

/**
 * Parses `env` against `schema`. Every bad or missing variable is reported at once, so an
 * operator fixes the deployment in one go instead of one restart per variable.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(root)';
    const value = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
    const shown = value === undefined ? 'unset' : `got ${JSON.stringify(value)}`;
    return `${name}: ${issue.message} (${shown})`;
  });
  throw new ConfigError(problems);
}
