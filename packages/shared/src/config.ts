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
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

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
