import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifySchemaCompiler } from 'fastify';
import { describeIssues } from '@switchyard/shared';
import type { z } from 'zod';
import { isTransientStoreError, RecordTooLarge, RevisionConflict, StoreUnavailable } from '../store/index.js';
import type { Issue } from '../store/index.js';
import { MalformedTagList, type PreconditionFailure } from './preconditions.js';
import type { ErrorBody, ErrorCode } from './schemas.js';

const codeByStatus: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  409: 'conflict',
  412: 'precondition_failed',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  431: 'request_header_fields_too_large',
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
export const preconditionFailed = (failure: PreconditionFailure) => new ApiError(412, [failure]);

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
    // Fastify hands a request without a body over as null; to the schemas, no body is undefined.
    const result = schema.safeParse(data ?? undefined);
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

export function toApiError(err: FastifyError | Error): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RequestValidationError) {
    return new ApiError(400, describeIssues(err.zodError, contextPrefix[err.validationContext ?? 'body'] ?? []));
  }
  if (err instanceof MalformedTagList) return badRequest(`header.${err.header}`, err.message);
  if (err instanceof RevisionConflict) {
    // Writes retry after a lost compare-and-set; this is what is left when they kept losing.
    return conflict('(store)', 'the record kept changing under concurrent writers; read it again and retry');
  }
  if (err instanceof RecordTooLarge) {
    return new ApiError(413, [
      { field: '(body)', message: `stored, it would be ${err.bytes} bytes; the config store takes at most ${err.limit}` },
    ]);
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

/** What a malformed or oversized request gets before fastify sees it (fastify's clientErrorHandler). */
function clientError(code: string | undefined): ApiError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new ApiError(431, [{ field: '(headers)', message: `the request line and headers exceed ${maxHeaderSize} bytes` }]);
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ApiError(408, [{ field: '(request)', message: 'the request did not arrive in time' }]);
  }
  return new ApiError(400, [{ field: '(request)', message: 'not a well-formed HTTP/1.1 request' }]);
}

/** Answers a request node's HTTP parser refused, in the same error body as every other error. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const error = clientError(err.code);
    const body = JSON.stringify(error.body);
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
