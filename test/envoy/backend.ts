import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';

/** What the backend saw of one request, as it answers it (JSON body). */
export interface Echo {
  backend: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/**
 * An HTTP/1.1 upstream for the Envoy tests. Every path answers JSON describing the request
 * (headers as received: what Envoy forwarded). Special paths:
 *   /status/<code>   answers that status
 *   /delay/<ms>      answers after that long
 *   /sse/<n>         a server-sent-event stream of n events, 100 ms apart
 *   /healthz         200, or 503 once `failHealth` is set
 * WebSocket upgrades on any path echo every message back with the backend's name.
 * It counts requests per path (health-check probes included).
 */
export class TestBackend {
  readonly counts = new Map<string, number>();
  failHealth = false;
  /** When set, every non-health request answers this status. */
  failWith: number | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly name: string,
    private readonly server: Server,
  ) {}

  static async start(name: string, host = '127.0.0.1'): Promise<TestBackend> {
    const server = createServer();
    const backend = new TestBackend(name, server);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://backend');
      backend.counts.set(url.pathname, (backend.counts.get(url.pathname) ?? 0) + 1);
      const echo: Echo = { backend: name, method: req.method ?? '', path: url.pathname + url.search, headers: req.headers };
      const [, kind, arg] = url.pathname.split('/');
      const json = (status: number, extra: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-backend': name, ...extra });
        res.end(JSON.stringify(echo));
      };
      if (kind === 'healthz') return json(backend.failHealth ? 503 : 200);
      if (backend.failWith !== undefined) return json(backend.failWith);
      if (kind === 'status') return json(Number(arg));
      if (kind === 'delay') return void setTimeout(() => json(200), Number(arg)).unref();
      if (kind === 'sse') return backend.sse(res, Number(arg));
      json(200);
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${name}:${data.toString()}`)));
    server.on('connection', (socket) => {
      backend.sockets.add(socket);
      socket.on('close', () => backend.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return backend;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** A static endpoint of a revision spec. */
  get endpoint(): { address: string; port: number } {
    return { address: (this.server.address() as AddressInfo).address, port: this.port };
  }

  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  private sse(res: ServerResponse, events: number): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-backend': this.name });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(`id: ${sent}\ndata: ${this.name} event ${sent}\n\n`);
      if (++sent === events) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
    res.on('close', () => clearInterval(timer));
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
