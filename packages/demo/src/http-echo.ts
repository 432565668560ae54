import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { DemoBehaviour } from './behaviour.js';

/**
 * A small HTTP service: answers every path with JSON naming the instance and revision,
 * `/healthz` for health checks, and `?delay_ms=` to hold a request open. Every answer says in
 * `x-demo-ready-after-ms` how long this process took from its start until it listened (the
 * instance's own time to ready, which the cold-start benchmark subtracts) and in
 * `x-demo-max-in-flight` the most requests (health checks aside) it has had in flight at once.
 */
export async function startHttpEcho(
  port: number,
  behaviour: DemoBehaviour,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const startedAt = Date.now();
  let readyAfterMs = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const instance = `${req.socket.localAddress}:${(server.address() as AddressInfo).port}`;
    if (url.pathname === '/healthz') {
      const port = (server.address() as AddressInfo).port;
      const failing =
        (behaviour.unhealthyAfterMs > 0 && Date.now() - startedAt > behaviour.unhealthyAfterMs) ||
        (behaviour.chaosDir !== undefined && existsSync(join(behaviour.chaosDir, `${port}.unhealthy`)));
      res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ healthy: !failing }));
      return;
    }
    const delay = Math.min(60_000, Math.max(0, Number(url.searchParams.get('delay_ms') ?? 0) || 0));
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.once('close', () => inFlight--);
    setTimeout(() => {
      const fail = Math.random() < behaviour.failRate;
      res.writeHead(fail ? 503 : 200, {
        'content-type': 'application/json',
        'x-demo-instance': instance,
        'x-demo-ready-after-ms': readyAfterMs.toFixed(1),
        'x-demo-max-in-flight': String(maxInFlight),
      });
      res.end(JSON.stringify({ instance, revision: behaviour.revision, path: url.pathname, host: req.headers.host ?? null }));
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(port, behaviour.host, resolve));
  // performance.now() counts from the process's start (Node's time origin).
  readyAfterMs = performance.now();
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
