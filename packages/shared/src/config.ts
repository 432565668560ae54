import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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

const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** Whether `host` is an IP address or a DNS hostname (what a socket can connect to or listen on). */
export function isHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) !== 0 || hostnamePattern.test(host);
}

/**
 * What is wrong with one NATS server address, or undefined: `nats://` or `tls://` URLs (user and
 * password allowed) or a bare `host[:port]`, as nats.js takes them.
 */
export function natsServerProblem(entry: string): string | undefined {
  const text = entry.trim();
  if (text === '') return 'an empty server in the list';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'nats' && scheme !== 'tls') return `"${text}": the scheme must be nats:// or tls://`;
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `nats://${text}` : text);
  } catch {
    return `"${text}" is not a server address such as nats://127.0.0.1:4222`;
  }
  if (!isHost(url.hostname)) return `"${text}": "${url.hostname}" is not a host name or IP address`;
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '')
    return `"${text}": a server address has no path or query`;
  return undefined;
}

/** NATS_URL: one server address or a comma-separated list of them. */
const natsUrl = z
  .string()
  .default('nats://127.0.0.1:4222')
  .superRefine((value, ctx) => {
    for (const entry of value.split(',')) {
      const problem = natsServerProblem(entry);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }
  });

/** An optional http(s) URL (an empty value is unset). */
const optionalHttpUrl = optionalString.refine(
  (value) => value === undefined || (URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && isHost(new URL(value).hostname)),
  'must be an http:// or https:// URL, e.g. http://127.0.0.1:4318',
);

/** Settings every service shares: where NATS is, its admin port, log level. */
export const commonEnv = {
  NATS_URL: natsUrl,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl,
  /** JetStream replicas for Switchyard's streams and buckets: 1 for one server, 3 in a production cluster. */
  NATS_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** This service's NATS user (default: the service's name, as the generated server config names it). */
  NATS_USER: optionalString,
  /** Its password, or NATS_PASSWORD_FILE naming a file that holds it (a mounted secret). Unset: anonymous. */
  NATS_PASSWORD: optionalString,
  NATS_PASSWORD_FILE: optionalString,
};

export type NatsAuthConfig = { NATS_USER?: string; NATS_PASSWORD?: string; NATS_PASSWORD_FILE?: string };

/**
 * A standalone service's NATS credentials from its env: user NATS_USER (default `service`),
 * password from NATS_PASSWORD or the file NATS_PASSWORD_FILE; undefined when neither is set.
 */
export function natsCredentialsOf(config: NatsAuthConfig, service: string): { user: string; password: string } | undefined {
  if (config.NATS_PASSWORD !== undefined && config.NATS_PASSWORD_FILE !== undefined)
    throw new ConfigError(['NATS_PASSWORD_FILE: is set while NATS_PASSWORD is set; choose one']);
  let password = config.NATS_PASSWORD;
  if (config.NATS_PASSWORD_FILE !== undefined) {
    try {
      password = readFileSync(config.NATS_PASSWORD_FILE, 'utf8').trim();
    } catch (err) {
      throw new ConfigError([`NATS_PASSWORD_FILE: cannot read ${config.NATS_PASSWORD_FILE}: ${(err as Error).message}`]);
    }
    if (password === '') throw new ConfigError([`NATS_PASSWORD_FILE: ${config.NATS_PASSWORD_FILE} is empty`]);
  }
  if (password === undefined) {
    if (config.NATS_USER !== undefined)
      throw new ConfigError(['NATS_PASSWORD: required (unset) when NATS_USER is set, or NATS_PASSWORD_FILE']);
    return undefined;
  }
  return { user: config.NATS_USER ?? service, password };
}

/**
 * TLS of the Envoy-facing gRPC port (xDS, LRS, MetricsService, HDS, Watch): PEM files of the
 * server's certificate and key and of the CA that signs client certificates. A standalone
 * service needs all three (see {@link grpcSecurityOf}) unless XDS_INSECURE is set.
 */
export const grpcTlsEnv = {
  XDS_TLS_CERT: optionalString,
  XDS_TLS_KEY: optionalString,
  XDS_TLS_CLIENT_CA: optionalString,
  /** Serve the gRPC port without TLS: anyone who reaches it gets every tenant's config. */
  XDS_INSECURE: flag(false),
};
export type GrpcTlsConfig = { [K in keyof typeof grpcTlsEnv]: z.infer<(typeof grpcTlsEnv)[K]> };

/** How a host's gRPC port is secured: mutual TLS from PEM files, or plaintext. */
export type GrpcSecurity = { mode: 'mtls'; certFile: string; keyFile: string; clientCaFile: string } | { mode: 'plaintext' };

const tlsFiles = ['XDS_TLS_CERT', 'XDS_TLS_KEY', 'XDS_TLS_CLIENT_CA'] as const;

/**
 * The security a standalone service's gRPC port must have: mutual TLS when the three files
 * are named, plaintext only when XDS_INSECURE=true says so explicitly and no file is named.
 * Anything else is a ConfigError naming the variables.
 */
export function grpcSecurityOf(config: Partial<GrpcTlsConfig>): GrpcSecurity {
  const missing = tlsFiles.filter((name) => config[name] === undefined);
  if (config.XDS_INSECURE === true) {
    if (missing.length === tlsFiles.length) return { mode: 'plaintext' };
    throw new ConfigError([`XDS_INSECURE: is true while ${tlsFiles.filter((n) => !missing.includes(n)).join(', ')} set; choose one`]);
  }
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map(
        (name) =>
          `${name}: required (unset): the Envoy-facing gRPC port serves mutual TLS from PEM files (XDS_TLS_CERT, XDS_TLS_KEY, XDS_TLS_CLIENT_CA); XDS_INSECURE=true serves it without TLS`,
      ),
    );
  }
  return { mode: 'mtls', certFile: config.XDS_TLS_CERT!, keyFile: config.XDS_TLS_KEY!, clientCaFile: config.XDS_TLS_CLIENT_CA! };
}

/** Comma-separated list, blanks dropped. */
const list = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v) =>
      v
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== ''),
    );

export const controlPlaneEnv = z.object({
  ...commonEnv,
  ...grpcTlsEnv,
  /**
   * Client-certificate identities (URI or DNS SANs) of the edge Envoy fleet: only these receive
   * TLS secrets over SDS when the gRPC port serves mutual TLS.
   */
  XDS_EDGE_IDENTITIES: list('spiffe://switchyard/edge'),
  CONTROL_PLANE_GRPC_PORT: port(18000),
  CONTROL_PLANE_ADMIN_PORT: port(9401),
  API_PORT: port(8080),
  SWITCHYARD_ADMIN_TOKEN: optionalString,
  SWITCHYARD_ENDPOINT_CIDRS: z.string().default(''),
  /**
   * Registry prefixes revision images must come from (comma-separated, e.g.
   * `registry.example.com/team/,ghcr.io/acme/`); unset allows any image.
   */
  SWITCHYARD_IMAGE_REGISTRIES: optionalString,
  /** How long an endpoint may stay unhealthy before EDS drops it. */
  SWITCHYARD_REAP_UNHEALTHY_MS: millis(60_000),
  /** Upper bound on a stream's connection age; jittered so a fleet reconnects gradually. */
  XDS_MAX_CONNECTION_AGE_MS: millis(30 * 60_000),
  /**
   * Worker processes that serve xDS connections beside the control plane's own process, each
   * with a replica of its cache (default: one per core beyond the first). 0 serves every
   * stream in one process. Only a control plane alone in its process uses them (the
   * all-in-one's gRPC port also carries LRS and HDS, which a worker does not serve).
   */
  XDS_WORKERS: z.coerce
    .number()
    .int()
    .min(0)
    .max(64)
    .default(Math.max(0, availableParallelism() - 1)),
  /** Where the Envoys' shared listeners bind (sent to them over LDS). */
  ENVOY_LISTENER_ADDRESS: ipAddress('0.0.0.0'),
  ENVOY_HTTP_PORT: port(8080),
  ENVOY_HTTPS_PORT: port(8443),
  /** The ports clients connect to (a load balancer or Kubernetes Service in front), sent as X-Forwarded-Port. */
  ENVOY_HTTP_PUBLIC_PORT: port(80),
  ENVOY_HTTPS_PUBLIC_PORT: port(443),
  /**
   * When set, every Envoy runs each service's health check itself (active health checks) and
   * writes its check events to this file (a path on the Envoy's machine). Off by default: the
   * event-streamer delegates checks over HDS instead; turning this on multiplies probes by the fleet size.
   */
  ENVOY_ACTIVE_HEALTH_CHECK_EVENT_LOG: optionalString,
  /**
   * `ip:port` of the activator, or of each replica separated by commas (a Kubernetes Service's
   * cluster IP, fixed addresses in compose, or 127.0.0.1 locally): EDS points revisions that
   * scale to zero there while they have no ready instance, every replica an endpoint (Envoy
   * balances over them). Unset: no activator.
   */
  ACTIVATOR_ADDRESS: optionalString
    .refine(
      (v) => v === undefined || v.split(',').every((a) => hostPort(a.trim()) !== undefined),
      'must be <IP address>:<port>, or several separated by commas',
    )
    .transform((v) => (v === undefined ? undefined : v.split(',').map((a) => hostPort(a.trim()) as { address: string; port: number }))),
});
export type ControlPlaneConfig = z.infer<typeof controlPlaneEnv>;

export const statsSinkEnv = z.object({
  ...commonEnv,
  ...grpcTlsEnv,
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
  /**
   * Several stats-sink replicas share the fleet: each publishes its per-node share on
   * `switchyard.loadpart.*`, and the merged total goes out on `switchyard.load.*`.
   */
  STATS_SINK_REPLICATED: flag(false),
  /** This replica's id in the merge (default: host name and process id). */
  STATS_SINK_REPLICA_ID: optionalString,
});
export type StatsSinkConfig = z.infer<typeof statsSinkEnv>;

export const eventStreamerEnv = z.object({
  ...commonEnv,
  ...grpcTlsEnv,
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
  /**
   * Several event-streamer replicas share the Envoy fleet: membership heartbeats in the
   * `switchyard-event-streamers` bucket, assignment over the union of their Envoys, votes
   * forwarded on `switchyard.hdsvotes.<replica>` to the one replica that aggregates each endpoint.
   */
  EVENT_STREAMER_REPLICATED: flag(false),
  /** This replica's id (default: host name and process id, made a subject token). */
  EVENT_STREAMER_REPLICA_ID: optionalString.refine(
    (v) => v === undefined || /^[A-Za-z0-9_-]{1,128}$/.test(v),
    'must be 1–128 letters, digits, "-" or "_"',
  ),
  /** How often a replica heartbeats; one silent for four heartbeats is gone and its Envoys' checks move. */
  EVENT_STREAMER_HEARTBEAT_MS: millis(1000),
});
export type EventStreamerConfig = z.infer<typeof eventStreamerEnv>;

export const autoscalerEnv = z.object({
  ...commonEnv,
  AUTOSCALER_ADMIN_PORT: port(9404),
  INSTANCE_PROVIDER: z.enum(['local', 'static', 'kubernetes']).default('local'),
  /** Kubernetes provider: a kubeconfig file; unset uses the in-cluster service account. */
  KUBECONFIG: optionalString,
  /** Kubernetes provider: tenant namespaces are `<prefix><tenant>`. */
  KUBERNETES_NAMESPACE_PREFIX: z.string().default('switchyard-tenant-'),
  /** Kubernetes provider: the port tenant containers listen on (also set as PORT). */
  KUBERNETES_CONTAINER_PORT: port(8080),
  /** Kubernetes provider: requests and limits of each tenant container. */
  KUBERNETES_POD_CPU: z.string().default('250m'),
  KUBERNETES_POD_MEMORY: z.string().default('256Mi'),
  /** Kubernetes provider: each tenant namespace's ResourceQuota. */
  KUBERNETES_TENANT_PODS: z.coerce.number().int().positive().default(50),
  KUBERNETES_TENANT_CPU: z.string().default('8'),
  KUBERNETES_TENANT_MEMORY: z.string().default('16Gi'),
  /** Identity of this replica in the leader lease. */
  AUTOSCALER_REPLICA_ID: optionalString,
  AUTOSCALER_LEASE_TTL_MS: millis(5000),
  DRAIN_TIMEOUT_MS: millis(30_000),
  /** Address local instances listen on and are published with. */
  LOCAL_INSTANCE_HOST: z.string().default('127.0.0.1').refine(isHost, 'must be an IP address or a host name, e.g. 127.0.0.1'),
  /**
   * Where the local provider records this machine's running instances, so that they outlive
   * the autoscaler and the next leader adopts them. Replicas that should adopt each other's
   * instances share it. Default: `$TMPDIR/switchyard-local-<uid>/<hash of NATS_URL>` (one per
   * installation); `syctl up` uses `<data dir>/instances`.
   */
  LOCAL_STATE_DIR: optionalString,
  /** How long a local instance may take to pass its first health check. */
  INSTANCE_START_TIMEOUT_MS: millis(60_000),
  /** SIGTERM to SIGKILL for a local instance being stopped. */
  INSTANCE_STOP_TIMEOUT_MS: millis(10_000),
  /**
   * Running as root, local instances run as one uid per tenant, hashed into COUNT uids from BASE
   * up (by default 2,000,000 to 1,001,999,999: far from system, login and subordinate-uid ranges).
   */
  LOCAL_INSTANCE_UID_BASE: z.coerce
    .number()
    .int()
    .min(1000)
    .max(2 ** 31)
    .default(2_000_000),
  LOCAL_INSTANCE_UID_COUNT: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 31)
    .default(1_000_000_000),
  /** Load samples stamped further ahead of this replica's clock are dropped. */
  LOAD_MAX_CLOCK_SKEW_MS: millis(2000),
});
export type AutoscalerConfig = z.infer<typeof autoscalerEnv>;

export const activatorEnv = z.object({
  ...commonEnv,
  /** Where the activator takes the requests Envoy and proxyless gRPC clients send it (HTTP/1.1 and h2c on one port). */
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
  /**
   * Changes within this window after the first held request become one poke. 0 (the default):
   * the changes of one event-loop turn become one poke, and the autoscaler decides again on
   * each later poke; a window delays every cold start by at least its length (docs/activator.md).
   */
  ACTIVATOR_POKE_COALESCE_MS: z.coerce.number().int().min(0).max(1000).default(0),
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
