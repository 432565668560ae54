import { describe, expect, it } from 'vitest';
import { checkMessage, lookupType } from '@switchyard/shared';
import { readMetricFamilies } from '../src/metrics-reader.js';
import { LoadAggregator } from '../src/load-aggregator.js';
import { loadStatsRequestType, loadWire, metricsMessageType } from '../src/wire.js';
import { clusterStats, envoyNode, metricsMessage } from './envoy-fixtures.js';

const wire = loadWire();

/** Encodes with protobufjs; fixtures are checked against the proto first, unless they are bad on purpose. */
function encode(typeName: string, object: Record<string, unknown>, valid = true): Uint8Array {
  if (valid) expect(checkMessage(typeName, object)).toEqual([]);
  const type = lookupType(typeName);
  return type.encode(type.fromObject(object)).finish();
}

function readFlush(object: Record<string, unknown>, valid = true) {
  const decoded = wire.decodeMetrics(encode(metricsMessageType, object, valid));
  return readMetricFamilies(decoded.envoy_metrics ?? [], wire.metricTypes);
}

describe('readMetricFamilies', () => {
  const clusters = {
    sy_acme_api_blue: { active: 3, total: 120, classes: { '2xx': 100, '4xx': 15, '5xx': 5 } },
    sy_acme_api_green: { active: 0, total: 7, classes: { '2xx': 7 } },
  };

  it.each([
    ['tag-stripped names are off: cluster.<name>.upstream_rq_2xx', false],
    ['emit_tags_as_labels: cluster.upstream_rq_xx{envoy.cluster_name, envoy.response_code_class}', true],
  ])('reads %s', (_label, tagged) => {
    const read = readFlush(metricsMessage(envoyNode('e1'), clusters, 1_700_000_000_123, tagged));
    expect(read.snapshotMs).toBe(1_700_000_000_123);
    expect(read.unknownTypes + read.typeMismatches + read.invalidValues).toBe(0);
    expect(Object.fromEntries(read.clusters)).toEqual({
      sy_acme_api_blue: { cluster: 'sy_acme_api_blue', inFlight: 3, total: 120, classes: [100, undefined, 15, 5] },
      sy_acme_api_green: { cluster: 'sy_acme_api_green', inFlight: 0, total: 7, classes: [7, undefined, undefined, undefined] },
    });
  });

  it('counts unknown metric types, stats of the wrong type and bad values, and skips them', () => {
    const read = readFlush(
      {
        envoy_metrics: [
          { name: 'cluster.sy_a_b_c.upstream_rq_active', type: 9, metric: [{ gauge: { value: 4 } }] },
          { name: 'cluster.sy_a_b_c.upstream_rq_total', type: 'GAUGE', metric: [{ gauge: { value: 4 } }] },
          { name: 'cluster.sy_a_b_c.upstream_rq_2xx', type: 'COUNTER', metric: [{ counter: { value: Number.NaN } }] },
          { name: 'cluster.sy_a_b_c.upstream_rq_5xx', type: 'COUNTER', metric: [{ counter: { value: -1 } }] },
          { name: 'cluster.sy_a_b_c.upstream_rq_4xx', type: 'UNTYPED', metric: [{ untyped: { value: 2 } }] },
          {
            name: 'cluster.upstream_rq_xx',
            type: 'COUNTER',
            metric: [{ counter: { value: 1 }, label: [{ name: 'envoy.cluster_name', value: 'sy_a_b_c' }] }],
          },
          { name: 'cluster.upstream_rq_active', type: 'GAUGE', metric: [{ gauge: { value: 1 } }] },
        ],
      },
      false,
    );
    expect(read).toMatchObject({ families: 7, unknownTypes: 1, typeMismatches: 1, invalidValues: 2, snapshotMs: undefined });
    // The tagged class without a class label and the tagged gauge without a cluster label are skipped.
    expect(Object.fromEntries(read.clusters)).toEqual({
      sy_a_b_c: { cluster: 'sy_a_b_c', inFlight: undefined, total: undefined, classes: [undefined, undefined, 2, undefined] },
    });
  });
});

describe('decoded LRS reports', () => {
  it('feed the aggregator as decoded: 64-bit counts, localities and the report interval', () => {
    const bytes = encode(loadStatsRequestType, {
      node: envoyNode('n1'),
      cluster_stats: [
        clusterStats(
          'sy_acme_api_blue',
          [
            { zone: 'a', inProgress: 4, issued: 10, successful: 8, errors: 1 },
            { zone: 'b', inProgress: 1, issued: 5, successful: 5, errors: 0 },
          ],
          1500,
        ),
        { cluster_name: 'sy_acme_api_quiet', upstream_locality_stats: [] },
        { cluster_name: '' },
      ],
    });
    const decoded = wire.decodeLoadStats(bytes);
    expect(decoded.node?.id).toBe('n1');
    const aggregator = new LoadAggregator({
      intervalMs: 1000,
      staleAfterMs: 5000,
      maxClustersPerReporter: 10,
      maxRevisions: 10,
      revisionIdleMs: 60_000,
    });
    aggregator.open('s1', 'lrs', 'n1', { countersAsDeltas: false });
    const outcome = aggregator.ingest('s1', { source: 'lrs', clusters: decoded.cluster_stats ?? [] }, 0);
    expect(outcome.accepted).toBe(2);
    const revisions = aggregator.view(0).flatMap((s) => s.revisions);
    expect(revisions.find((r) => r.cluster === 'sy_acme_api_blue')).toMatchObject({
      concurrency: 5,
      rps: 10,
      responses: [26 / 3, 0, 0, 2 / 3],
      windowMs: 1500,
      nodes: 1,
    });
    expect(revisions.find((r) => r.cluster === 'sy_acme_api_quiet')).toMatchObject({ concurrency: 0, rps: 0 });
  });

  it('refuses bytes that are not a LoadStatsRequest', () => {
    expect(() => wire.decodeLoadStats(Buffer.from('definitely not protobuf \xff\xff\xff'))).toThrow();
  });
});
