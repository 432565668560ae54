import { lookupType } from '@switchyard/shared';
import { loadStatsRequestType, metricsMessageType } from '../src/wire.js';
import { clusterStats, envoyNode, metricsMessage, type ClusterNumbers } from '../test/envoy-fixtures.js';

/**
 * The benchmark's messages, encoded once: the load clients send exactly these bytes and the
 * decode-only baseline decodes exactly these bytes. Deterministic, so the client process and
 * the benchmark build the same corpus from the same parameters.
 */
export interface CorpusParams {
  lrsStreams: number;
  metricsStreams: number;
  lrsClustersPerMessage: number;
  metricsClustersPerMessage: number;
  /** Distinct revisions the streams' clusters are drawn from (so many nodes report each revision). */
  revisions: number;
  /** Bodies per stream, sent in turn (counters grow between them, then wrap as a reset). */
  variants: number;
  intervalMs: number;
}

export interface StreamCorpus {
  first: Buffer;
  bodies: Buffer[];
}

export interface Corpus {
  lrs: StreamCorpus[];
  metrics: StreamCorpus[];
}

function encoder(typeName: string): (object: Record<string, unknown>) => Buffer {
  const type = lookupType(typeName);
  return (object) => Buffer.from(type.encode(type.fromObject(object)).finish());
}

function revisionCluster(index: number): string {
  return `sy_tenant${index % 97}_svc${index % 13}_rev${index}`;
}

/** The clusters stream `stream` reports: a window over the revisions that moves by stream. */
function clustersOf(stream: number, count: number, params: CorpusParams): string[] {
  const start = (stream * 7919) % params.revisions;
  return Array.from({ length: count }, (_, i) => revisionCluster((start + i) % params.revisions));
}

export function buildCorpus(params: CorpusParams): Corpus {
  const encodeLrs = encoder(loadStatsRequestType);
  const encodeMetrics = encoder(metricsMessageType);
  const lrs: StreamCorpus[] = [];
  for (let s = 0; s < params.lrsStreams; s++) {
    const clusters = clustersOf(s, params.lrsClustersPerMessage, params);
    lrs.push({
      first: encodeLrs({ node: envoyNode(`bench-lrs-${s}`) }),
      bodies: Array.from({ length: params.variants }, (_, v) =>
        encodeLrs({
          cluster_stats: clusters.map((cluster, c) =>
            clusterStats(cluster, [{ inProgress: (c + v) % 9, issued: 20 + v, successful: 19 + v, errors: 1 }], params.intervalMs),
          ),
        }),
      ),
    });
  }
  const metrics: StreamCorpus[] = [];
  const t0 = 1_700_000_000_000;
  for (let s = 0; s < params.metricsStreams; s++) {
    const clusters = clustersOf(params.lrsStreams + s, params.metricsClustersPerMessage, params);
    const flush = (v: number): Record<string, ClusterNumbers> =>
      Object.fromEntries(
        clusters.map((cluster, c) => [
          cluster,
          { active: (c + v) % 7, total: 1000 * (v + 1), classes: { '2xx': 990 * (v + 1), '5xx': 10 * (v + 1) } },
        ]),
      );
    metrics.push({
      first: encodeMetrics({ identifier: { node: envoyNode(`bench-envoy-${s}`) } }),
      // Half the Envoys emit tags as labels, half the plain names.
      bodies: Array.from({ length: params.variants }, (_, v) =>
        encodeMetrics(metricsMessage(undefined, flush(v), t0 + v * params.intervalMs, s % 2 === 1)),
      ),
    });
  }
  return { lrs, metrics };
}
