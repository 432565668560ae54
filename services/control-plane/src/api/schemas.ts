import { z } from 'zod';
import { dnsLabel, serviceSpec } from '@switchyard/shared';

/**
 * Request and response shapes of the management API. Request bodies reuse the shared spec
 * schemas; responses are plain data so the OpenAPI document describes them exactly.
 */

export const issue = z.object({
  field: z
    .string()
    .describe('The field at fault: a body path such as "revisions[0].endpoints[1].address", or "path.<param>", "header.<name>"'),
  message: z.string(),
});

export const errorCodes = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'conflict',
  'precondition_failed',
  'payload_too_large',
  'uri_too_long',
  'unsupported_media_type',
  'request_header_fields_too_large',
  'internal',
  'unavailable',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** The one error body every non-2xx response has. */
export const errorBody = z
  .object({
    status: z.number().int(),
    code: z.enum(errorCodes),
    message: z.string().describe('Every issue as "field: message", joined by "; "'),
    issues: z.array(issue),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorBody>;

export const tenantParams = z.object({ tenant: dnsLabel });
export const serviceParams = z.object({ tenant: dnsLabel, service: dnsLabel });

/** Every error answer a route can give, for its OpenAPI responses. */
export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  409: errorBody,
  412: errorBody,
  413: errorBody,
  415: errorBody,
  503: errorBody,
};

/** Conditional requests (RFC 9110 §13) on the ETag, which is the record's KV revision. */
export const conditionalHeaders = z.looseObject({
  'if-match': z
    .string()
    .optional()
    .describe('Apply only if the record exists and is at one of these ETags, e.g. "42"; * means "if it exists". 412 otherwise'),
  'if-none-match': z
    .string()
    .optional()
    .describe('Apply only if the record is at none of these ETags; * means "only if it does not exist yet". 412 otherwise'),
});

export const tenantView = z
  .object({
    name: z.string(),
    domains: z.array(z.string()).describe('Granted domains; each covers itself and all its subdomains'),
    services: z.number().int().describe('How many services the tenant has'),
    revision: z.number().int().describe('KV revision of the tenant record, also its ETag'),
    updatedAt: z.number().int(),
  })
  .meta({ id: 'Tenant' });
export type TenantView = z.infer<typeof tenantView>;

export const tokenIssued = z.object({
  tenant: z.string(),
  token: z.string().describe('The secret, shown only this once; the store keeps its SHA-256'),
});

export const whoami = z.object({
  role: z.enum(['admin', 'tenant']),
  tenant: z.string().nullable(),
});

const trafficEntry = z.object({ revision: z.string(), percent: z.number() });

export const trafficBody = z.object({ traffic: serviceSpec.shape.traffic.unwrap() }).strict();

export const endpointStatus = z.object({
  address: z.string(),
  port: z.number().int(),
  /** Instance id for managed endpoints; null for static ones. */
  id: z.string().nullable(),
  state: z.enum(['static', 'starting', 'ready', 'draining']),
  health: z.enum(['healthy', 'unhealthy', 'unknown']),
});
export const revisionStatus = z.object({
  name: z.string(),
  source: z.enum(['static', 'managed']),
  percent: z.number().describe('Share of traffic routed to this revision'),
  endpoints: z.array(endpointStatus),
});
/** How far a service's config got into the data plane, per connected xDS client. */
export const xdsDelivery = z.object({
  version: z.string().nullable().describe('The config version that carries this spec revision; null until translated'),
  nodes: z.array(
    z.object({
      node: z.string(),
      state: z.enum(['ACKED', 'NACKED', 'PENDING']),
      ackedVersion: z.string().nullable(),
      error: z.string().nullable().describe('The NACK error, when NACKED'),
    }),
  ),
  heldBack: z
    .object({
      error: z.string().describe("The data-plane client's rejection of this service's latest spec"),
      typeUrl: z.string(),
      since: z.number().int(),
      servingPrevious: z.boolean().describe('True: the last accepted spec is served; false: the service is left out'),
    })
    .nullable()
    .default(null)
    .describe('Set while Envoy rejects the latest spec; cleared by the next spec change'),
});
export const serviceStatus = z
  .object({
    specRevision: z.number().int(),
    revisions: z.array(revisionStatus),
    xds: xdsDelivery.nullable().describe('Null when no xDS engine reports to this API'),
  })
  .meta({ id: 'ServiceStatus' });
export type ServiceStatus = z.infer<typeof serviceStatus>;
export type RevisionStatus = z.infer<typeof revisionStatus>;
export type EndpointStatus = z.infer<typeof endpointStatus>;
export type XdsDelivery = z.infer<typeof xdsDelivery>;

export const serviceView = z
  .object({
    tenant: z.string(),
    name: z.string(),
    revision: z.number().int().describe('KV revision of the service record, also its ETag'),
    updatedAt: z.number().int(),
    spec: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe(
        'The ServiceSpec as stored: every default filled in, durations in milliseconds; `tls` shows `redirectHttp` and the ' +
          "certificate's subject, subjectAltNames, notBefore, notAfter and fingerprintSha256, never the private key; " +
          'null when no valid record was ever stored under this name',
      ),
    status: serviceStatus,
    errors: z
      .array(z.object({ source: z.enum(['record', 'translation']), field: z.string(), message: z.string() }))
      .describe(
        'record: the newest stored record fails the current schema (replace it with If-Match on `revision`, or delete it); ' +
          'translation: the translator refused the spec, so Envoy keeps its last good translation',
      ),
  })
  .meta({ id: 'Service' });
export type ServiceView = z.infer<typeof serviceView>;

export const serviceSummary = z.object({
  name: z.string(),
  domains: z.array(z.string()),
  protocol: z.enum(['http', 'grpc']),
  revisions: z.array(z.string()),
  traffic: z.array(trafficEntry),
  revision: z.number().int(),
  updatedAt: z.number().int(),
});

/** One connected xDS client, in the words CSDS uses. */
export const xdsNodeStatus = z
  .object({
    id: z.string(),
    cluster: z.string(),
    userAgent: z.string().nullable().describe('user_agent_name from the node, e.g. "envoy" or "grpc-node-js"'),
    connectedAt: z.number().int().nullable(),
    resources: z.array(
      z.object({
        typeUrl: z.string(),
        status: z
          .enum(['REQUESTED', 'ACKED', 'NACKED'])
          .describe('CSDS words: the last response was ACKed or NACKed, or none answered yet'),
        upToDate: z.boolean().describe('The client ACKed the current desired state of everything it subscribes to'),
        mode: z.enum(['sotw', 'delta']),
        ackedVersion: z.string().nullable(),
        lastNack: z.object({ version: z.string().nullable(), error: z.string(), at: z.number().int() }).nullable(),
      }),
    ),
  })
  .meta({ id: 'XdsNode' });
export type XdsNodeStatus = z.infer<typeof xdsNodeStatus>;
