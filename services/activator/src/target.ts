import type { IncomingHttpHeaders } from 'node:http';
import { activatorHeaders, parseClusterName, type RevisionRef } from '@switchyard/shared';
import { chooseRevision, grpcTimeoutMs, type Directory } from './directory.js';

/**
 * Where a request is for, from its headers alone (HTTP/1.1 or HTTP/2): the service its
 * authority names, the revision the route named (or, from a proxyless gRPC client, one the
 * split picks), how long it may be held (the route's timeout from Envoy, else the client's
 * gRPC deadline, else the service's request timeout) and how many requests one instance takes.
 */
export type Target = { ref: RevisionRef; timeoutMs: number; maxConcurrency: number } | { status: 400 | 404; error: string };

const revisionHeader = activatorHeaders.revision;
const timeoutHeader = activatorHeaders.timeoutMs;

export function readTarget(
  headers: IncomingHttpHeaders,
  directory: Directory,
  hasReady: (ref: RevisionRef) => boolean,
  random: () => number = Math.random,
): Target {
  const authority = headers[':authority'] ?? headers.host;
  if (typeof authority !== 'string' || authority === '') return { status: 400, error: 'the request names no host (:authority or host)' };
  const entry = directory.lookup(authority);
  if (entry === undefined) return { status: 404, error: `no Switchyard service serves the host ${authority}` };
  const cluster = headers[revisionHeader];
  const named = typeof cluster === 'string' ? parseClusterName(cluster) : undefined;
  if (cluster !== undefined && named === undefined)
    return { status: 400, error: `header ${revisionHeader} must name a Switchyard revision cluster (sy_<tenant>_<service>_<revision>)` };
  const choice = chooseRevision(entry, named, (revision) => hasReady({ ...entry, revision }), random());
  if ('error' in choice) return { status: 400, error: choice.error };
  const rawTimeout = headers[timeoutHeader];
  if (rawTimeout !== undefined) {
    if (typeof rawTimeout !== 'string' || !/^\d{1,10}$/.test(rawTimeout))
      return { status: 400, error: `header ${timeoutHeader} must be a whole number of milliseconds` };
    return {
      ref: choice.ref,
      timeoutMs: Number(rawTimeout) === 0 ? entry.timeoutMs : Number(rawTimeout),
      maxConcurrency: entry.maxConcurrency,
    };
  }
  const deadline = headers['grpc-timeout'];
  const grpcMs = grpcTimeoutMs(typeof deadline === 'string' ? deadline : undefined);
  return { ref: choice.ref, timeoutMs: Math.min(grpcMs ?? entry.timeoutMs, entry.timeoutMs), maxConcurrency: entry.maxConcurrency };
}
