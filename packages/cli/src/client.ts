import { CliError, ExitCode, usageError } from './errors.js';

interface ErrorIssue {
  field: string;
  message: string;
}

export interface ApiResponse<T> {
  status: number;
  etag: string | undefined;
  body: T;
}

/** The error body every non-2xx answer of the management API has. */
interface ApiErrorBody {
  status: number;
  code: string;
  message: string;
  issues: ErrorIssue[];
}

function isErrorBody(body: unknown): body is ApiErrorBody {
  return typeof body === 'object' && body !== null && Array.isArray((body as ApiErrorBody).issues);
}

/** An API error answer, with the field messages and a hint on what to fix. */
export class ApiRequestError extends CliError {
  constructor(
    readonly status: number,
    readonly issues: ErrorIssue[],
    summary: string,
    body: unknown,
  ) {
    const lines = issues.map((issue) => `  ${issue.field}: ${issue.message}`);
    super([summary, ...lines].join('\n'), ExitCode.apiError, body);
    this.name = 'ApiRequestError';
  }
}

const timeoutMs = 30_000;

/** A thin client of the management API: bearer token, JSON both ways, errors mapped to exit codes. */
export class ApiClient {
  readonly base: string;

  constructor(
    base: string,
    private readonly token: string,
  ) {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw usageError(`--api "${base}" is not a URL; use e.g. http://127.0.0.1:8080`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--api "${base}" must be an http:// or https:// URL`);
    this.base = url.href.replace(/\/+$/, '');
  }

  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; ifMatch?: string; ifNoneMatch?: string } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch;
    if (options.ifNoneMatch !== undefined) headers['if-none-match'] = options.ifNoneMatch;
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(
        `${method} ${path}: ${response.status} with a body that is not JSON; is ${this.base} the Switchyard API?`,
        ExitCode.apiError,
      );
    }
    if (!response.ok) {
      const summary = `${method} ${path} failed: ${response.status} ${isErrorBody(body) ? body.code : response.statusText}`;
      throw new ApiRequestError(response.status, isErrorBody(body) ? body.issues : [], summary, body);
    }
    return { status: response.status, etag: response.headers.get('etag') ?? undefined, body: body as T };
  }

  private unreachable(err: unknown): CliError {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const reason =
      err instanceof Error && err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : ((cause as { code?: string }).code ?? (cause instanceof Error ? cause.message : String(cause)));
    return new CliError(
      `cannot reach the Switchyard API at ${this.base} (${reason}); start it (syctl up) or point --api / SWITCHYARD_API at it`,
      ExitCode.unreachable,
    );
  }
}
