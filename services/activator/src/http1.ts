import http from 'node:http';
import type { Endpoint } from '@switchyard/shared';
import { decide, forwardedHeaders, type OwnAnswer, type ProxyDeps } from './decide.js';

/** The activator's HTTP/1.1 front end: each request is held or forwarded as {@link decide} says, to the instance over HTTP/1.1. */
export function createHttp1Server(deps: ProxyDeps): http.Server {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return http.createServer((req, res) => {
    const { verdict, cancel } = decide(req.headers, deps);
    res.once('close', () => {
      if (!res.writableFinished) cancel();
    });
    void verdict.then((v) => {
      if (v.kind === 'answer') answer(res, v);
      else if (res.destroyed) v.done();
      else {
        res.once('close', v.done);
        forward(req, res, v.endpoint, agent, deps);
      }
    });
  });
}

function forward(req: http.IncomingMessage, res: http.ServerResponse, endpoint: Endpoint, agent: http.Agent, deps: ProxyDeps): void {
  const headers = forwardedHeaders(req.headers, false);
  const upstream = http.request(
    { host: endpoint.address, port: endpoint.port, method: req.method, path: req.url, headers, agent },
    (response) => {
      deps.metrics.requests.inc({ outcome: 'forwarded' });
      res.writeHead(response.statusCode ?? 502, forwardedHeaders(response.headers, false));
      response.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    deps.metrics.requests.inc({ outcome: 'upstream_error' });
    deps.logger.warn({ err, endpoint: `${endpoint.address}:${endpoint.port}` }, 'forwarding a held request failed');
    if (!res.headersSent)
      answer(res, { status: 502, message: `the instance at ${endpoint.address}:${endpoint.port} failed: ${err.message}` });
    else res.destroy(err);
  });
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function answer(res: http.ServerResponse, own: Pick<OwnAnswer, 'status' | 'message' | 'retryAfterSeconds'>): void {
  if (res.destroyed) return;
  const retry = own.retryAfterSeconds === undefined ? {} : { 'retry-after': String(own.retryAfterSeconds) };
  res.writeHead(own.status, { 'content-type': 'text/plain; charset=utf-8', 'x-switchyard-activator': 'true', ...retry });
  res.end(`${own.message}\n`);
}
