import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { describeIssues } from '@switchyard/shared';
import type { z } from 'zod';
import { isTransientStoreError, RevisionConflict, StoreUnavailable } from '../store/index.js';
import type { Issue } from '../store/index.js';
import type { ErrorBody, ErrorCode } from './schemas.js';

const codeByStatus: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  503: 'unavailable',
};

/** An error the API answers with as is: a status and the fields at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly issues: Issue[],
    /** For a 503: when the client may retry, in seconds (`Retry-After`). */
    readonly retryAfterSeconds?: number,
  ) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    this.name = 'ApiError';
  }

  get body(): ErrorBody {
    return { status: this.status, code: codeByStatus[this.status] ?? 'internal', message: this.message, issues: this.issues };
  }
}

export const badRequest = (field: string, message: string) => new ApiError(400, [{ field, message }]);
export const notFound = (field: string, message: string) => new ApiError(404, [{ field, message }]);
export const conflict = (field: string, message: string) => new ApiError(409, [{ field, message }]);

/** A request part failed its zod schema; keeps the ZodError so fields are named the shared way. */
class RequestValidationError extends Error {
  validationContext?: string;
  constructor(readonly zodError: z.ZodError) {
    super('request validation failed');
  }
}

/**
 * Validates with the route's zod schemas (the type provider's own compiler flattens paths to
 * JSON pointers; this one keeps the ZodError for {@link describeIssues}).
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data);
    return result.success ? { value: result.data } : { error: new RequestValidationError(result.error) };
  };

/** How a request part is named in `field`: body paths bare, the rest prefixed. */
const contextPrefix: Record<string, string[]> = { body: [], params: ['path'], querystring: ['query'], headers: ['header'] };

/** Fastify's own 4xx errors, named by the part of the request they are about. */
const fastifyErrorField: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'header.content-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'header.content-length',
  FST_ERR_CTP_BODY_TOO_LARGE: '(body)',
  FST_ERR_CTP_EMPTY_JSON_BODY: '(body)',
  FST_ERR_CTP_INVALID_JSON_BODY: '(body)',
};

export function toApiError(err: FastifyError | Error, request: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RequestValidationError) {
    return new ApiError(400, describeIssues(err.zodError, contextPrefix[err.validationContext ?? 'body'] ?? []));
  }
  if (err instanceof RevisionConflict) {
    const field = 'header.if-match';
    return 'ifAbsent' in err.condition
      ? conflict(field, 'was created by someone else meanwhile; read it and send its ETag in If-Match to replace it')
      : conflict(field, `${request.headers['if-match'] ?? 'the version read'} is no longer the current version; read it again and retry`);
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const field = fastifyErrorField[(err as FastifyError).code] ?? '(request)';
    return new ApiError(status, [{ field, message: err.message }]);
  }
  if (isTransientStoreError(err)) {
    const retryAfterSeconds = err instanceof StoreUnavailable ? err.retryAfterSeconds : 1;
    return new ApiError(
      503,
      [{ field: '(store)', message: `the config store (NATS JetStream) did not answer; retry in ${retryAfterSeconds} s` }],
      retryAfterSeconds,
    );
  }
  return new ApiError(500, [{ field: '(server)', message: 'internal error; the control plane log has the details' }]);
}

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.status === 401) reply.header('www-authenticate', 'Bearer');
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.code(error.status).send(error.body);
}
