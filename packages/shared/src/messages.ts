import { z } from 'zod';
import { dnsLabel } from './names.js';

/**
 * The bus contract: every subject the services publish, its payload schema and version.
 * Subjects are `switchyard.<kind>.<tenant>.<service>[.<revision>]`; tenant, service and
 * revision are DNS labels, so each is exactly one subject token.
 */

const timestamp = z.number().int().nonnegative().describe('milliseconds since the Unix epoch');
const revisionScope = { tenant: dnsLabel, service: dnsLabel, revision: dnsLabel };
const serviceScope = { tenant: dnsLabel, service: dnsLabel };

export const loadSample = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  /** Requests in flight across the whole fleet, summed over reporting nodes. */
  concurrency: z.number().nonnegative(),
  rps: z.number().nonnegative(),
  responses: z
    .object({
      '2xx': z.number().nonnegative(),
      '3xx': z.number().nonnegative(),
      '4xx': z.number().nonnegative(),
      '5xx': z.number().nonnegative(),
    })
    .describe('responses per second by status class'),
  errorRatio: z.number().min(0).max(1),
  windowMs: z.number().int().positive(),
  ts: timestamp,
  nodes: z.number().int().nonnegative().describe('nodes that reported within the staleness timeout'),
});
export type LoadSample = z.infer<typeof loadSample>;

const responsesByClass = z
  .object({
    '2xx': z.number().nonnegative(),
    '3xx': z.number().nonnegative(),
    '4xx': z.number().nonnegative(),
    '5xx': z.number().nonnegative(),
  })
  .describe('responses per second by status class');

/** One node's share of a revision's load as one stats-sink replica saw it. */
export const nodeLoadShare = z.object({
  node: z.string().min(1).max(256),
  /** When the replica last heard from the node; of two replicas reporting a node, the later one counts. */
  at: timestamp,
  concurrency: z.number().nonnegative(),
  rps: z.number().nonnegative(),
  responses: responsesByClass,
  windowMs: z.number().int().positive(),
});
export type NodeLoadShare = z.infer<typeof nodeLoadShare>;

export const loadPartial = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  replica: z.string().min(1).max(128).describe('the stats-sink replica that publishes this partial'),
  ts: timestamp,
  /** The partial counts until ts + freshForMs; a replica that dies stops counting then. */
  freshForMs: z.number().int().positive().max(600_000),
  nodes: z.array(nodeLoadShare).max(100_000),
});
export type LoadPartial = z.infer<typeof loadPartial>;

export const scaleDecision = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  ts: timestamp,
  current: z.number().int().nonnegative(),
  desired: z.number().int().nonnegative(),
  stableConcurrency: z.number().nonnegative(),
  panicConcurrency: z.number().nonnegative(),
  panic: z.boolean(),
  targetPerInstance: z.number().positive(),
  /** The rule that bounded the raw recommendation, if any. */
  limitedBy: z
    .enum(['minInstances', 'maxInstances', 'maxScaleUpRate', 'maxScaleDownRate', 'scaleDownDelay', 'panic', 'scaleToZeroGrace'])
    .nullable(),
  reason: z.string(),
});
export type ScaleDecision = z.infer<typeof scaleDecision>;

export const endpointState = z.enum(['starting', 'ready', 'draining']);
export const endpoint = z.object({
  id: z.string().min(1).max(128),
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  state: endpointState,
  startedAt: timestamp.optional(),
});
export type Endpoint = z.infer<typeof endpoint>;

export const endpointSet = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  /** Grows with every change; a receiver ignores sets older than the one it holds. */
  generation: z.number().int().nonnegative(),
  endpoints: z.array(endpoint),
  ts: timestamp,
});
export type EndpointSet = z.infer<typeof endpointSet>;

/**
 * How far an endpoint set's generation may run ahead of a receiver's clock. Publishers number
 * sets max(previous + 1, now in ms), so a real one is never far ahead; receivers drop one
 * beyond this, or a forged 9e15 would outrank every real set that follows.
 */
export const maxGenerationAheadMs = 60_000;

/** Whether a receiver at `now` must drop the set (see {@link maxGenerationAheadMs}). */
export function generationFromFuture(set: Pick<EndpointSet, 'generation'>, now: number): boolean {
  return set.generation > now + maxGenerationAheadMs;
}

export const healthState = z.enum(['healthy', 'unhealthy', 'unknown']);
export const healthTransition = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  endpoint: z.object({ address: z.string(), port: z.number().int(), id: z.string().optional() }),
  state: healthState,
  previous: healthState,
  reason: z.string(),
  votes: z.array(z.object({ checker: z.string(), state: healthState, ts: timestamp })),
  ts: timestamp,
});
export type HealthTransition = z.infer<typeof healthTransition>;

export const instanceEvent = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  instance: z.string(),
  event: z.enum(['starting', 'ready', 'exited', 'start_failed', 'draining', 'stopped', 'replaced', 'not_runnable']),
  detail: z.string().default(''),
  ts: timestamp,
});
export type InstanceEvent = z.infer<typeof instanceEvent>;

export const serviceStatusEvent = z.object({
  schemaVersion: z.literal(1),
  ...serviceScope,
  event: z.enum(['applied', 'deleted', 'traffic']),
  /** The KV revision of the service's spec this event describes. */
  specRevision: z.number().int().nonnegative(),
  revisions: z.array(dnsLabel),
  traffic: z.array(z.object({ revision: dnsLabel, percent: z.number() })),
  ts: timestamp,
});
export type ServiceStatusEvent = z.infer<typeof serviceStatusEvent>;

export const deploymentEvent = z.object({
  schemaVersion: z.literal(1),
  ...serviceScope,
  deploymentId: z.string(),
  phase: z.enum(['started', 'scaling', 'healthy', 'shifting', 'baking', 'completed', 'rolling_back', 'rolled_back', 'failed']),
  revision: dnsLabel,
  previousRevision: dnsLabel.nullable(),
  traffic: z.array(z.object({ revision: dnsLabel, percent: z.number() })),
  healthyInstances: z.number().int().nonnegative(),
  desiredInstances: z.number().int().nonnegative(),
  errorRatio: z.number().min(0).max(1).nullable(),
  message: z.string(),
  ts: timestamp,
});
export type DeploymentEvent = z.infer<typeof deploymentEvent>;

export const envoyEvent = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  source: z.enum(['event_reporting', 'health_check_log', 'outlier_log']),
  type: z.enum(['health_check', 'outlier_detection']),
  node: z.string().nullable(),
  endpoint: z.object({ address: z.string(), port: z.number().int() }).nullable(),
  /** The event as Envoy sent it (proto JSON), for subscribers that want every detail. */
  detail: z.record(z.string(), z.unknown()),
  ts: timestamp,
});
export type EnvoyEvent = z.infer<typeof envoyEvent>;

export const xdsEvent = z.object({
  schemaVersion: z.literal(1),
  event: z.enum(['connect', 'disconnect', 'ack', 'nack']),
  nodeId: z.string(),
  cluster: z.string().default(''),
  typeUrl: z.string().optional(),
  version: z.string().optional(),
  error: z.string().optional(),
  ts: timestamp,
});
export type XdsEvent = z.infer<typeof xdsEvent>;

export const activationPoke = z.object({
  schemaVersion: z.literal(1),
  ...revisionScope,
  /** The activator replica holding the requests (its pokes replace its earlier ones). */
  activator: z.string().min(1).max(128),
  /** Requests this replica holds for the revision right now: the autoscaler counts them as concurrency. */
  held: z.number().int().nonnegative(),
  ts: timestamp,
});
export type ActivationPoke = z.infer<typeof activationPoke>;

/** An event-streamer replica id: one subject token (no dots or wildcards). */
export const replicaId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be 1–128 letters, digits, "-" or "_"')
  .describe('an event-streamer replica id');

/**
 * HDS results an event-streamer replica received from one of its Envoys for endpoints whose
 * votes another replica aggregates: sent to that replica (the subject's token), which counts
 * them as if the Envoy had reported to it.
 */
export const hdsVotes = z.object({
  schemaVersion: z.literal(1),
  /** The replica that aggregates these endpoints (the subject token). */
  replica: replicaId,
  /** The replica whose Envoy reported them. */
  from: replicaId,
  /** The reporting Envoy's node id. */
  checker: z.string().min(1).max(256),
  results: z
    .array(
      z.object({
        cluster: z.string().min(1).max(256),
        address: z.string().min(1).max(256),
        port: z.number().int().min(1).max(65_535),
        status: z.string().max(32),
      }),
    )
    .max(100_000),
  ts: timestamp,
});
export type HdsVotes = z.infer<typeof hdsVotes>;

/**
 * One event-streamer replica's heartbeat (the value of its key in the event-streamer members
 * bucket): the Envoys connected to it over HDS. Every replica assigns checks over the union.
 */
export const eventStreamerHeartbeat = z.object({
  schemaVersion: z.literal(1),
  replica: replicaId,
  envoys: z
    .array(
      z.object({
        node: z.string().min(1).max(256),
        /** The checks it can run; empty means every protocol. */
        protocols: z.array(z.enum(['http', 'tcp'])).max(2),
        /** When its HDS stream to this replica opened (the replica's clock), in ms. */
        connectedAt: timestamp,
      }),
    )
    .max(50_000),
  ts: timestamp,
});
export type EventStreamerHeartbeat = z.infer<typeof eventStreamerHeartbeat>;

/**
 * The services that connect to NATS, each with its own identity (user) and permissions; see
 * bus-permissions.ts, which derives every identity's permissions from the `publishers` and
 * `readers` below and from {@link bucketAccess}.
 */
export const busServices = ['control-plane', 'stats-sink', 'event-streamer', 'autoscaler', 'activator'] as const;
export type BusService = (typeof busServices)[number];

interface SubjectKind<S extends z.ZodType> {
  kind: string;
  schema: S;
  /** How many tokens after the kind: 2 (tenant.service) or 3 (tenant.service.revision), 1 for xds (event) and hdsvotes (replica). */
  tokens: 1 | 2 | 3;
  /** With one token, the payload field it comes from (default `event`). */
  token?: 'event' | 'replica';
  jetstream: boolean;
  description: string;
  /** The only services NATS lets publish this kind. */
  publishers: readonly BusService[];
  /** The services that subscribe to it (and, for a JetStream kind, read its stream); read-only tools may always subscribe. */
  readers: readonly BusService[];
}

function kind<S extends z.ZodType>(def: SubjectKind<S>): SubjectKind<S> {
  return def;
}

export const subjectKinds = {
  load: kind({
    kind: 'load',
    schema: loadSample,
    tokens: 3,
    jetstream: false,
    description: 'Fleet-wide load per revision, published by the stats-sink every reporting interval.',
    publishers: ['stats-sink'],
    readers: ['control-plane', 'autoscaler'],
  }),
  loadpart: kind({
    kind: 'loadpart',
    schema: loadPartial,
    tokens: 3,
    jetstream: false,
    description: "One stats-sink replica's share of a revision's load, per node; the replicas merge them into `load`.",
    publishers: ['stats-sink'],
    readers: ['stats-sink'],
  }),
  scale: kind({
    kind: 'scale',
    schema: scaleDecision,
    tokens: 3,
    jetstream: true,
    description: 'Every autoscaler decision with its inputs.',
    publishers: ['autoscaler'],
    readers: ['event-streamer', 'autoscaler'],
  }),
  endpoints: kind({
    kind: 'endpoints',
    schema: endpointSet,
    tokens: 3,
    jetstream: true,
    description: "A revision's full endpoint set with a generation number.",
    publishers: ['autoscaler'],
    readers: ['control-plane', 'event-streamer', 'activator'],
  }),
  health: kind({
    kind: 'health',
    schema: healthTransition,
    tokens: 3,
    jetstream: true,
    description: 'Health transitions of endpoints, aggregated from the Envoys checking them.',
    publishers: ['event-streamer'],
    readers: ['control-plane', 'autoscaler', 'event-streamer'],
  }),
  instance: kind({
    kind: 'instance',
    schema: instanceEvent,
    tokens: 3,
    jetstream: true,
    description: 'Instance lifecycle from the instance provider.',
    publishers: ['autoscaler'],
    readers: ['control-plane', 'event-streamer'],
  }),
  envoy: kind({
    kind: 'envoy',
    schema: envoyEvent,
    tokens: 3,
    jetstream: true,
    description: 'Health-check and outlier-detection events reported by Envoy.',
    publishers: ['event-streamer'],
    readers: ['event-streamer'],
  }),
  status: kind({
    kind: 'status',
    schema: serviceStatusEvent,
    tokens: 2,
    jetstream: true,
    description: 'Service spec and traffic changes.',
    publishers: ['control-plane'],
    readers: ['event-streamer'],
  }),
  deploy: kind({
    kind: 'deploy',
    schema: deploymentEvent,
    tokens: 2,
    jetstream: true,
    description: 'Deployment progress, one event per step.',
    publishers: ['control-plane'],
    readers: ['event-streamer'],
  }),
  activate: kind({
    kind: 'activate',
    schema: activationPoke,
    tokens: 3,
    jetstream: false,
    description:
      'Requests an activator holds for a revision without ready instances, published at once when the count changes and every second while it holds any.',
    publishers: ['activator'],
    readers: ['autoscaler'],
  }),
  xds: kind({
    kind: 'xds',
    schema: xdsEvent,
    tokens: 1,
    jetstream: true,
    description: 'xDS client connects, ACKs and NACKs, by event.',
    publishers: ['control-plane'],
    readers: ['event-streamer'],
  }),
  hdsvotes: kind({
    kind: 'hdsvotes',
    schema: hdsVotes,
    tokens: 1,
    token: 'replica',
    jetstream: false,
    description:
      "HDS results forwarded between event-streamer replicas: sent to the replica that aggregates the endpoints' votes (an internal subject).",
    publishers: ['event-streamer'],
    readers: ['event-streamer'],
  }),
} as const;

export type SubjectKindName = keyof typeof subjectKinds;
export type PayloadOf<K extends SubjectKindName> = z.infer<(typeof subjectKinds)[K]['schema']>;

export const subjectRoot = 'switchyard';

/** The concrete subject a payload is published on. */
export function subjectFor<K extends SubjectKindName>(name: K, payload: PayloadOf<K>): string {
  const def = subjectKinds[name];
  const p = payload as Record<string, unknown>;
  const tokens =
    def.tokens === 1
      ? [p[(def as SubjectKind<z.ZodType>).token ?? 'event']]
      : def.tokens === 2
        ? [p.tenant, p.service]
        : [p.tenant, p.service, p.revision];
  return [subjectRoot, def.kind, ...tokens].join('.');
}

/** A subscription pattern for a kind, optionally narrowed to a tenant and service (or, for one-token kinds, to that token). */
export function subjectPattern(name: SubjectKindName, scope: { tenant?: string; service?: string; token?: string } = {}): string {
  const parts = [subjectRoot, subjectKinds[name].kind];
  if (subjectKinds[name].tokens === 1) return [...parts, scope.token ?? '*'].join('.');
  if (scope.tenant === undefined) return [...parts, '>'].join('.');
  parts.push(scope.tenant);
  if (scope.service === undefined) return [...parts, '>'].join('.');
  parts.push(scope.service);
  return subjectKinds[name].tokens === 3 ? [...parts, '*'].join('.') : parts.join('.');
}

export interface ParsedSubject {
  kind: SubjectKindName;
  tenant?: string;
  service?: string;
  revision?: string;
}

export function parseSubject(subject: string): ParsedSubject | undefined {
  const [root, kindToken, ...rest] = subject.split('.');
  if (root !== subjectRoot) return undefined;
  const name = Object.keys(subjectKinds).find((k) => subjectKinds[k as SubjectKindName].kind === kindToken) as SubjectKindName | undefined;
  if (name === undefined || rest.length !== subjectKinds[name].tokens) return undefined;
  if (subjectKinds[name].tokens === 1) return { kind: name };
  const [tenant, service, revision] = rest;
  return revision === undefined ? { kind: name, tenant, service } : { kind: name, tenant, service, revision };
}

/** JetStream streams and the subjects they hold. */
export const streams = {
  endpoints: { name: 'SWITCHYARD_ENDPOINTS', subjects: ['switchyard.endpoints.>'], maxMsgsPerSubject: 16 },
  health: { name: 'SWITCHYARD_HEALTH', subjects: ['switchyard.health.>'], maxMsgsPerSubject: 1000 },
  events: {
    name: 'SWITCHYARD_EVENTS',
    subjects: [
      'switchyard.scale.>',
      'switchyard.instance.>',
      'switchyard.envoy.>',
      'switchyard.status.>',
      'switchyard.deploy.>',
      'switchyard.xds.>',
    ],
    maxMsgsPerSubject: 10_000,
  },
} as const;

/** JetStream KV buckets. */
export const buckets = {
  /** Desired state: `tenants.<t>`, `services.<t>.<s>`, `tokens.<sha256>`. */
  config: 'switchyard-config',
  leases: 'switchyard-leases',
  /** Event-streamer replicas' heartbeats, keyed by replica id: who is up and which Envoys it serves. */
  eventStreamers: 'switchyard-event-streamers',
} as const;

/**
 * Who may change and who may read each bucket (a writer also reads it and creates it when
 * missing). Read-only tools get no bucket: the config bucket holds tenants' specs and keys.
 */
export const bucketAccess: Record<keyof typeof buckets, { writers: readonly BusService[]; readers: readonly BusService[] }> = {
  config: { writers: ['control-plane'], readers: ['autoscaler', 'event-streamer', 'activator'] },
  leases: { writers: ['autoscaler'], readers: [] },
  eventStreamers: { writers: ['event-streamer'], readers: [] },
};

/** The service that creates and updates the streams; the others wait for them to exist. */
export const streamsOwner: BusService = 'control-plane';
