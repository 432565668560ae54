import http from 'node:http';
import { activatorHeaders, parseClusterName, type Logger, type RevisionRef } from '@switchyard/shared';
import type { Holding, Outcome } from './holding.js';
import type { ActivatorMetrics } from './metrics.js';

/**
 * The activator's HTTP/1.1 reverse proxy. Envoy sends it the requests of revisions without
 * ready instances, each with the revision's cluster name in `x-switchyard-revision` and the
 * route's timeout in `x-switchyard-timeout-ms` (both set by the route, overwriting whatever a
 * client sent). It holds each request until the revision has a ready endpoint, then forwards it
 * there; beyond the queue bound it answers 503 with retry-after, after the timeout 504.
 */

const revisionHeader = activatorHeaders.revision;
const timeoutHeader = activatorHeaders.timeoutMs;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the activator's own, never passed on. */
const notForwarded = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  revisionHeader,
  timeoutHeader,
]);

export interface ProxyDeps {
  holding: Holding;
  metrics: ActivatorMetrics;
  logger: Logger;
}

export function createProxyServer(deps: ProxyDeps): http.Server {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return http.createServer((req, res) => {
    const target = readTarget(req);
    if ('error' in target) {
      deps.metrics.requests.inc({ outcome: 'bad_request' });
      answer(res, 400, target.error);
      return;
    }
    const { outcome, cancel } = deps.holding.route(target.ref, target.timeoutMs);
    res.once('close', () => {
      if (!res.writableFinished) cancel();
    });
    void outcome.then((result) => handle(result, req, res, agent, deps));
  });
}

function readTarget(req: http.IncomingMessage): { ref: RevisionRef; timeoutMs: number | undefined } | { error: string } {
  const cluster = req.headers[revisionHeader];
  const ref = typeof cluster === 'string' ? parseClusterName(cluster) : undefined;
  if (ref === undefined)
    return { error: `header ${revisionHeader} must name a Switchyard revision cluster (sy_<tenant>_<service>_<revision>)` };
  const rawTimeout = req.headers[timeoutHeader];
  if (rawTimeout === undefined) return { ref, timeoutMs: undefined };
  const timeoutMs = typeof rawTimeout === 'string' && /^\d{1,10}$/.test(rawTimeout) ? Number(rawTimeout) : undefined;
  if (timeoutMs === undefined) return { error: `header ${timeoutHeader} must be a whole number of milliseconds` };
  return { ref, timeoutMs };
}

function handle(result: Outcome, req: http.IncomingMessage, res: http.ServerResponse, agent: http.Agent, deps: ProxyDeps): void {
  if (result.kind === 'reject') {
    deps.metrics.requests.inc({ outcome: 'rejected' });
    res.setHeader('retry-after', String(result.retryAfterSeconds));
    answer(res, 503, `${result.reason}; retry after ${result.retryAfterSeconds} s`);
    return;
  }
  if (result.kind === 'timeout') {
    deps.metrics.requests.inc({ outcome: 'timed_out' });
    deps.metrics.queueSeconds.observe({ outcome: 'timed_out' }, result.heldMs / 1000);
    answer(res, 504, `no instance of the revision became ready within the route's timeout (held ${result.heldMs} ms)`);
    return;
  }
  if (res.destroyed) return;
  deps.metrics.queueSeconds.observe({ outcome: 'forwarded' }, result.heldMs / 1000);
  forward(req, res, result.endpoint, agent, deps);
}

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  endpoint: { address: string; port: number },
  agent: http.Agent,
  deps: ProxyDeps,
): void {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) if (!notForwarded.has(name) && value !== undefined) headers[name] = value;
  const upstream = http.request(
    { host: endpoint.address, port: endpoint.port, method: req.method, path: req.url, headers, agent },
    (response) => {
      deps.metrics.requests.inc({ outcome: 'forwarded' });
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(response.headers)) if (!notForwarded.has(name) && value !== undefined) out[name] = value;
      res.writeHead(response.statusCode ?? 502, out);
      response.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    deps.metrics.requests.inc({ outcome: 'upstream_error' });
    deps.logger.warn({ err, endpoint: `${endpoint.address}:${endpoint.port}` }, 'forwarding a held request failed');
    if (!res.headersSent) answer(res, 502, `the instance at ${endpoint.address}:${endpoint.port} failed: ${err.message}`);
    else res.destroy(err);
  });
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function answer(res: http.ServerResponse, status: number, message: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-switchyard-activator': 'true' });
  res.end(`${message}\n`);
}
