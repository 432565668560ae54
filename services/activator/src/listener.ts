import net from 'node:net';
import { createHttp1Server } from './http1.js';
import { createHttp2Server } from './http2.js';
import type { ProxyDeps } from './decide.js';

/** The first bytes of an HTTP/2 connection preface (RFC 9113 §3.4); no HTTP/1.1 method starts so. */
const h2Preface = Buffer.from('PRI * HTTP/2.0');

/**
 * The activator's one port for both protocols, in cleartext: a connection that opens with the
 * HTTP/2 preface (Envoy's HTTP/2 clusters, proxyless gRPC clients) goes to the HTTP/2 server,
 * any other to the HTTP/1.1 one. The bytes read to tell them apart are put back first.
 */
export function createProxyListener(deps: ProxyDeps): { server: net.Server; close: () => void } {
  const http1 = createHttp1Server(deps);
  const http2 = createHttp2Server(deps);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, h2Preface.length);
      const isH2 = seen.subarray(0, compared).equals(h2Preface.subarray(0, compared));
      if (isH2 && seen.length < h2Preface.length) return;
      socket.off('data', onData);
      socket.pause();
      socket.unshift(seen);
      (isH2 ? http2.server : http1).emit('connection', socket);
      // The HTTP/1.1 server reads by 'data' events, which a paused socket does not emit.
      if (!isH2) socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return {
    server,
    close: () => {
      http2.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
