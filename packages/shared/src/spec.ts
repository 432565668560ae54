import { z } from 'zod';
import { dnsLabel } from './names.js';
import { duration, timeoutDuration } from './duration.js';

/**
 * The desired state tenants write through the management API: tenant → service → revisions.
 * Cross-field rules that need the tenant's grant (domain ownership, endpoint allowlist) are
 * checked by the control plane; everything a single document can get wrong is checked here,
 * each error carrying the path of the field at fault.
 */

export const hostname = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    'must be a lowercase hostname, optionally starting with "*." for a wildcard',
  )
  .refine((host) => host.split('.').every((label) => label.length <= 63), { message: 'has a label longer than 63 characters' });

/** Match values reach Envoy as is: NUL, CR and LF would split or truncate what it compares. */
const matchText = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\0\r\n]*$/, 'must not contain NUL, CR or LF');

/** Header names a tenant may never set or remove: hop-by-hop, forwarding and the router's own. */
const reservedHeader =
  /^(connection|keep-alive|proxy-connection|proxy-authenticate|proxy-authorization|te|trailer|transfer-encoding|upgrade|host|:.*|x-forwarded-.*|x-envoy-.*|x-request-id|x-switchyard-.*|forwarded)$/i;

const headerName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9-]+$/, 'must contain only letters, digits and "-"');

const mutableHeaderName = headerName.refine((name) => !reservedHeader.test(name), {
  message: 'is reserved: hop-by-hop, x-forwarded-*, x-envoy-*, x-request-id and x-switchyard-* headers belong to the router',
});

/** Header values must not smuggle new lines or Envoy's %VAR% substitutions into the proxy config. */
const headerValue = z
  .string()
  .max(4096)
  .regex(/^[\x20-\x7e]*$/, 'must be printable ASCII')
  .refine((value) => !value.includes('%'), { message: 'must not contain "%" (Envoy substitution syntax)' });

const regex = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (pattern) => {
      try {
        new RegExp(pattern, 'u');
        return true;
      } catch {
        return false;
      }
    },
    { message: 'is not a valid regular expression' },
  );

function exactlyOne<T extends Record<string, unknown>>(keys: (keyof T & string)[], label: string) {
  return (value: T, ctx: z.RefinementCtx) => {
    const present = keys.filter((key) => value[key] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `needs exactly one of ${keys.join(', ')} (${label}); got ${present.length === 0 ? 'none' : present.join(', ')}`,
      });
    }
  };
}

export const headerMatcher = z
  .object({
    name: headerName,
    exact: matchText(4096).optional(),
    prefix: matchText(4096).min(1).optional(),
    regex: regex.optional(),
    present: z.literal(true).optional(),
    range: z
      .object({ start: z.number().int(), end: z.number().int() })
      .refine((r) => r.start < r.end, { message: 'start must be below end' })
      .optional(),
    invert: z.boolean().default(false),
  })
  .strict()
  .superRefine(exactlyOne(['exact', 'prefix', 'regex', 'present', 'range'], 'header match'));

export const queryMatcher = z
  .object({
    name: matchText(128).min(1),
    exact: matchText(4096).optional(),
    prefix: matchText(4096).min(1).optional(),
    regex: regex.optional(),
    present: z.literal(true).optional(),
  })
  .strict()
  .superRefine(exactlyOne(['exact', 'prefix', 'regex', 'present'], 'query parameter match'));

const path = matchText(1024).startsWith('/', 'must start with "/"');

export const routeSpec = z
  .object({
    name: dnsLabel.optional(),
    match: z
      .object({
        prefix: path.optional(),
        path: path.optional(),
        regex: regex.optional(),
        headers: z.array(headerMatcher).max(16).default([]),
        queryParams: z.array(queryMatcher).max(16).default([]),
      })
      .strict()
      .default({ prefix: '/', headers: [], queryParams: [] })
      .superRefine(exactlyOne(['prefix', 'path', 'regex'], 'path match')),
    /** Overrides the service's request timeout for this route. */
    timeout: timeoutDuration.optional(),
  })
  .strict();

export const retrySpec = z
  .object({
    attempts: z.number().int().min(0).max(10).default(2),
    on: z
      .array(z.enum(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes', 'refused-stream']))
      .default(['5xx', 'reset', 'connect-failure', 'retriable-status-codes']),
    statusCodes: z.array(z.number().int().min(100).max(599)).default([429]),
    perTryTimeout: timeoutDuration.default(30_000),
  })
  .strict();

export const circuitBreakerSpec = z
  .object({
    maxConnections: z.number().int().positive().default(1024),
    maxPendingRequests: z.number().int().positive().default(1024),
    maxRequests: z.number().int().positive().default(1024),
    maxRetries: z.number().int().nonnegative().default(3),
  })
  .strict();

export const outlierDetectionSpec = z
  .object({
    consecutive5xx: z.number().int().positive().default(5),
    interval: duration.default(10_000),
    baseEjectionTime: duration.default(30_000),
    maxEjectionPercent: z.number().int().min(0).max(100).default(50),
  })
  .strict();

export const healthCheckSpec = z
  .object({
    protocol: z.enum(['tcp', 'http']).default('tcp'),
    path: path.default('/'),
    interval: duration.default(5000),
    timeout: duration.default(2000),
    healthyThreshold: z.number().int().min(1).max(20).default(1),
    unhealthyThreshold: z.number().int().min(1).max(20).default(5),
    /** Results are ignored this long after an instance starts (App Runner roadmap #102). */
    gracePeriod: duration.default(10_000),
  })
  .strict()
  .refine((hc) => hc.timeout <= hc.interval, { message: 'timeout must not exceed interval', path: ['timeout'] });

export const rateLimitSpec = z
  .object({
    requestsPerSecond: z.number().int().positive().max(1_000_000),
    burst: z.number().int().positive().max(1_000_000).optional(),
  })
  .strict();

const headerAdd = z.object({ name: mutableHeaderName, value: headerValue }).strict();
const headerRules = z
  .object({
    add: z.array(headerAdd).max(32).default([]),
    remove: z.array(mutableHeaderName).max(32).default([]),
  })
  .strict()
  .default({ add: [], remove: [] });

export const scalingSpec = z
  .object({
    /** 0 allows scale to zero after `scaleToZeroGrace`. */
    minInstances: z.number().int().min(0).max(1000).default(1),
    maxInstances: z.number().int().min(1).max(1000).default(25),
    maxConcurrency: z.number().int().min(1).max(1000).default(100),
    /**
     * Knative's target burst capacity, in concurrent requests: while the revision's spare
     * capacity (ready instances × maxConcurrency − requests in flight) is below it, its traffic
     * goes through the activator. 0: the activator only at zero ready instances; -1: always.
     */
    targetBurstCapacity: z.number().int().min(-1).max(100_000).default(0),
    targetUtilization: z.number().gt(0).max(1).default(0.7),
    stableWindow: duration.default(60_000),
    panicWindow: duration.default(6_000),
    /** Panic when panic-window demand reaches this multiple of current capacity. */
    panicThreshold: z.number().min(1).max(10).default(2),
    maxScaleUpRate: z.number().gt(1).default(1000),
    maxScaleDownRate: z.number().gt(1).default(2),
    scaleDownDelay: duration.default(0),
    scaleToZeroGrace: duration.default(30_000),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.minInstances > s.maxInstances) {
      ctx.addIssue({ code: 'custom', path: ['minInstances'], message: `must not exceed maxInstances (${s.maxInstances})` });
    }
    if (s.panicWindow > s.stableWindow) {
      ctx.addIssue({ code: 'custom', path: ['panicWindow'], message: `must not exceed stableWindow (${s.stableWindow} ms)` });
    }
  });

export const staticEndpoint = z
  .object({
    address: z.union([z.ipv4(), z.ipv6()], { message: 'must be an IPv4 or IPv6 address' }),
    port: z.number().int().min(1).max(65535),
  })
  .strict();

export const revisionSpec = z
  .object({
    name: dnsLabel,
    /** Managed instances: a command the instance provider runs with PORT set. */
    command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
    image: z.string().min(1).max(512).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /** Unmanaged instances: fixed addresses, never scaled. */
    endpoints: z.array(staticEndpoint).min(1).max(1000).optional(),
  })
  .strict()
  .superRefine(exactlyOne(['command', 'image', 'endpoints'], 'revision source'));

export const trafficSpec = z.object({ revision: dnsLabel, percent: z.number().int().min(0).max(100) }).strict();

export const deploymentSpec = z
  .object({
    strategy: z.enum(['blue-green', 'canary']).default('blue-green'),
    /** Canary traffic percentages for the new revision, ending at 100. */
    steps: z.array(z.number().int().min(1).max(100)).min(1).default([10, 50, 100]),
    bake: duration.default(30_000),
    maxErrorRatio: z.number().min(0).max(1).default(0.05),
  })
  .strict()
  .refine((d) => d.steps.at(-1) === 100, { message: 'the last step must be 100', path: ['steps'] });

export const tlsSpec = z
  .object({
    certificateChain: z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'must be a PEM certificate chain' }),
    privateKey: z.string().includes('PRIVATE KEY-----', { message: 'must be a PEM private key' }),
    redirectHttp: z.boolean().default(false),
  })
  .strict();

export const serviceSpec = z
  .object({
    domains: z.array(hostname).min(1).max(100),
    protocol: z.enum(['http', 'grpc']).default('http'),
    routes: z
      .array(routeSpec)
      .min(1)
      .max(100)
      .default([{ match: { prefix: '/', headers: [], queryParams: [] } }]),
    timeouts: z
      .object({ request: timeoutDuration.default(120_000), idle: duration.default(300_000) })
      .strict()
      .default({ request: 120_000, idle: 300_000 }),
    retries: retrySpec.default(retrySpec.parse({})),
    circuitBreakers: circuitBreakerSpec.default(circuitBreakerSpec.parse({})),
    outlierDetection: outlierDetectionSpec.optional(),
    healthCheck: healthCheckSpec.default(healthCheckSpec.parse({})),
    rateLimit: rateLimitSpec.optional(),
    headers: z
      .object({ request: headerRules, response: headerRules })
      .strict()
      .default({ request: { add: [], remove: [] }, response: { add: [], remove: [] } }),
    scaling: scalingSpec.default(scalingSpec.parse({})),
    revisions: z.array(revisionSpec).min(1).max(20),
    traffic: z.array(trafficSpec).min(1).max(20).optional(),
    deployment: deploymentSpec.default(deploymentSpec.parse({})),
    tls: tlsSpec.optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const names = new Set<string>();
    spec.revisions.forEach((revision, i) => {
      if (names.has(revision.name)) {
        ctx.addIssue({ code: 'custom', path: ['revisions', i, 'name'], message: `duplicate revision "${revision.name}"` });
      }
      names.add(revision.name);
    });
    const seenDomains = new Set<string>();
    spec.domains.forEach((domain, i) => {
      if (seenDomains.has(domain)) ctx.addIssue({ code: 'custom', path: ['domains', i], message: `duplicate domain "${domain}"` });
      seenDomains.add(domain);
    });
    if (spec.traffic === undefined) {
      if (spec.revisions.length > 1) {
        ctx.addIssue({ code: 'custom', path: ['traffic'], message: 'is required when there is more than one revision' });
      }
      return;
    }
    let total = 0;
    const split = new Set<string>();
    spec.traffic.forEach((entry, i) => {
      total += entry.percent;
      if (!names.has(entry.revision)) {
        ctx.addIssue({
          code: 'custom',
          path: ['traffic', i, 'revision'],
          message: `names no revision of this service ("${entry.revision}")`,
        });
      }
      if (split.has(entry.revision)) {
        ctx.addIssue({ code: 'custom', path: ['traffic', i, 'revision'], message: `lists revision "${entry.revision}" twice` });
      }
      split.add(entry.revision);
    });
    if (total !== 100) ctx.addIssue({ code: 'custom', path: ['traffic'], message: `percentages must sum to 100, got ${total}` });
  });

export type ServiceSpecInput = z.input<typeof serviceSpec>;
export type ServiceSpec = z.output<typeof serviceSpec>;
export type RouteSpec = z.output<typeof routeSpec>;
export type RevisionSpec = z.output<typeof revisionSpec>;
export type HealthCheckSpec = z.output<typeof healthCheckSpec>;
export type ScalingSpec = z.output<typeof scalingSpec>;

/** Traffic per revision, with the single-revision default filled in. */
export function trafficSplit(spec: ServiceSpec): { revision: string; percent: number }[] {
  return spec.traffic ?? [{ revision: (spec.revisions[0] as RevisionSpec).name, percent: 100 }];
}

export const tenantSpec = z
  .object({
    /** Each granted domain covers itself and all its subdomains. */
    domains: z.array(hostname.refine((d) => !d.startsWith('*.'), { message: 'grant the parent domain, not a wildcard' })).max(100),
  })
  .strict();
export type TenantSpec = z.output<typeof tenantSpec>;

/** Formats zod issues as "path: message" lines, the form every API error and log uses. */
export function describeIssues(error: z.ZodError, prefix: (string | number)[] = []): { field: string; message: string }[] {
  return error.issues.map((issue) => {
    const parts = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    const field = parts.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
    return { field: field || '(body)', message: issue.message };
  });
}
