import http2 from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '@switchyard/shared';
import { decide, forwardedHeaders, type OwnAnswer, type ProxyDeps } from './decide.js';

/**
 * The activator's HTTP/2 (h2c) front end, for gRPC services (Envoy speaks HTTP/2 to their
 * clusters) and proxyless gRPC clients: each stream is held or forwarded as {@link decide}
 * says, to the instance over HTTP/2, with the response's trailers (gRPC's status) passed on.
 */
export function createHttp2Server(deps: ProxyDeps): { server: http2.Http2Server; close: () => void } {
  const sessions = new UpstreamSessions();
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    const { verdict, cancel } = decide(headers, deps);
    stream.once('close', () => {
      if (!stream.writableFinished) cancel();
    });
    void verdict.then((v) => {
      if (v.kind === 'answer') answer(stream, headers, v);
      else if (stream.destroyed || stream.closed) v.done();
      else {
        stream.once('close', v.done);
        forward(stream, headers, v.endpoint, sessions, deps);
      }
    });
  });
  return { server, close: () => sessions.close() };
}

/** One HTTP/2 connection per instance, opened on first use and forgotten when it closes. */
class UpstreamSessions {
  private readonly open = new Map<string, http2.ClientHttp2Session>();

  get(endpoint: Endpoint): http2.ClientHttp2Session {
    const key = `${endpoint.address}:${endpoint.port}`;
    const existing = this.open.get(key);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
    const session = http2.connect(`http://${host}:${endpoint.port}`);
    const forget = () => {
      if (this.open.get(key) === session) this.open.delete(key);
    };
    session.on('close', forget);
    session.on('goaway', forget);
    session.on('error', forget);
    this.open.set(key, session);
    return session;
  }

  close(): void {
    for (const session of this.open.values()) session.destroy();
    this.open.clear();
  }
}

function forward(
  stream: http2.ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  endpoint: Endpoint,
  sessions: UpstreamSessions,
  deps: ProxyDeps,
): void {
  const upstream = sessions.get(endpoint).request(forwardedHeaders(headers, true));
  let trailers: http2.IncomingHttpHeaders | undefined;
  upstream.on('response', (response, flags) => {
    deps.metrics.requests.inc({ outcome: 'forwarded' });
    const out = forwardedHeaders(response, true);
    if ((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
      stream.respond(out, { endStream: true });
      return;
    }
    stream.respond(out, { waitForTrailers: true });
    upstream.pipe(stream);
  });
  upstream.on('trailers', (received) => (trailers = received));
  stream.on('wantTrailers', () => stream.sendTrailers(forwardedHeaders(trailers ?? {}, false)));
  upstream.on('error', (err) => {
    deps.metrics.requests.inc({ outcome: 'upstream_error' });
    deps.logger.warn({ err, endpoint: `${endpoint.address}:${endpoint.port}` }, 'forwarding a held HTTP/2 request failed');
    if (!stream.headersSent) {
      const message = `the instance at ${endpoint.address}:${endpoint.port} failed: ${err.message}`;
      answer(stream, headers, { status: 502, grpcStatus: 14, message });
    } else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  stream.once('close', () => {
    if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL);
  });
  stream.pipe(upstream);
}

/** The activator's own answer: a gRPC status for gRPC requests (trailers-only), else an HTTP status with a text body. */
function answer(stream: http2.ServerHttp2Stream, headers: IncomingHttpHeaders, own: Omit<OwnAnswer, 'kind'>): void {
  if (stream.destroyed || stream.headersSent) return;
  const retry = own.retryAfterSeconds === undefined ? {} : { 'retry-after': String(own.retryAfterSeconds) };
  if (String(headers['content-type'] ?? '').startsWith('application/grpc')) {
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': String(own.grpcStatus),
        'grpc-message': encodeURIComponent(own.message),
        'x-switchyard-activator': 'true',
        ...retry,
      },
      { endStream: true },
    );
    return;
  }
  stream.respond({ ':status': own.status, 'content-type': 'text/plain; charset=utf-8', 'x-switchyard-activator': 'true', ...retry });
  stream.end(`${own.message}\n`);
}
