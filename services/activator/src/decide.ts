import type { IncomingHttpHeaders } from 'node:http';
import { activatorHeaders, type Endpoint, type Logger } from '@switchyard/shared';
import type { Directory } from './directory.js';
import type { Holding } from './holding.js';
import type { ActivatorMetrics } from './metrics.js';
import { readTarget } from './target.js';

/**
 * What the activator does with one request, whatever its protocol: forward it to a ready
 * endpoint (at once or once one is ready), or answer it itself. The HTTP/1.1 and HTTP/2
 * front ends (src/http1.ts, src/http2.ts) carry the verdict out.
 */

export interface ProxyDeps {
  holding: Holding;
  directory: Directory;
  metrics: ActivatorMetrics;
  logger: Logger;
}

/** An answer of the activator's own; `grpcStatus` is what a gRPC client gets instead of `status`. */
export interface OwnAnswer {
  kind: 'answer';
  status: number;
  grpcStatus: number;
  message: string;
  retryAfterSeconds?: number;
}

/** `done` frees the request's slot on the instance: call it once the exchange with the instance is over (or never started). */
export type Verdict = OwnAnswer | { kind: 'forward'; endpoint: Endpoint; done: () => void };

/** gRPC status codes (grpc/doc/statuscodes.md) for the activator's own answers. */
const grpcCodes = { invalidArgument: 3, deadlineExceeded: 4, notFound: 5, unavailable: 14 } as const;

export function decide(headers: IncomingHttpHeaders, deps: ProxyDeps): { verdict: Promise<Verdict>; cancel: () => void } {
  const target = readTarget(headers, deps.directory, (ref) => deps.holding.hasReady(ref));
  if ('error' in target) {
    deps.metrics.requests.inc({ outcome: 'bad_request' });
    const grpcStatus = target.status === 404 ? grpcCodes.notFound : grpcCodes.invalidArgument;
    return { verdict: Promise.resolve({ kind: 'answer', status: target.status, grpcStatus, message: target.error }), cancel: () => {} };
  }
  const { outcome, cancel } = deps.holding.route(target.ref, target.timeoutMs, target.maxConcurrency);
  const verdict = outcome.then((result): Verdict => {
    if (result.kind === 'reject') {
      deps.metrics.requests.inc({ outcome: 'rejected' });
      const message = `${result.reason}; retry after ${result.retryAfterSeconds} s`;
      return { kind: 'answer', status: 503, grpcStatus: grpcCodes.unavailable, message, retryAfterSeconds: result.retryAfterSeconds };
    }
    if (result.kind === 'timeout') {
      deps.metrics.requests.inc({ outcome: 'timed_out' });
      deps.metrics.queueSeconds.observe({ outcome: 'timed_out' }, result.heldMs / 1000);
      const message = `no instance of the revision became ready within the route's timeout (held ${result.heldMs} ms)`;
      return { kind: 'answer', status: 504, grpcStatus: grpcCodes.deadlineExceeded, message };
    }
    deps.metrics.queueSeconds.observe({ outcome: 'forwarded' }, result.heldMs / 1000);
    return { kind: 'forward', endpoint: result.endpoint, done: result.done };
  });
  return { verdict, cancel };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1, RFC 9113 §8.2.2) and the activator's own, never passed on. */
const notForwarded = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'trailer',
  'transfer-encoding',
  'upgrade',
  activatorHeaders.revision,
  activatorHeaders.timeoutMs,
]);

/** The headers passed on: `te` only as HTTP/2 allows it (`trailers`, which gRPC needs). */
export function forwardedHeaders(headers: IncomingHttpHeaders, keepPseudo: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || notForwarded.has(name)) continue;
    if (name.startsWith(':') && !keepPseudo) continue;
    if (name === 'te' && value !== 'trailers') continue;
    out[name] = value;
  }
  return out;
}
