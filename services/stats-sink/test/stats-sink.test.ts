import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import type { ServiceModule } from '@switchyard/shared';
import { clusterStats, envoyNode, metricsMessage, type ClusterNumbers } from './envoy-fixtures.js';
import { LrsStream, MetricsStream, rawClientStream, startSink, until, type SinkUnderTest } from './harness.js';

const metricsPath = '/envoy.service.metrics.v3.MetricsService/StreamMetrics';
const t0 = 1_700_000_000_000;

function numbers(active: number, total: number, classes: ClusterNumbers['classes']): ClusterNumbers {
  return { active, total, classes };
}

describe('stats-sink over real gRPC and a real nats-server', () => {
  let nats: NatsServer;
  let sink: SinkUnderTest;

  beforeAll(async () => {
    nats = await NatsServer.start();
    sink = await startSink(nats);
  });
  afterAll(async () => {
    await sink?.stop();
    await nats?.dispose();
  });

  it('MetricsService, plain stat names, cumulative counters: concurrency, rates and classes on the load subject', async () => {
    const stream = new MetricsStream(sink.target);
    const cluster = 'sy_acme_api_plain';
    stream.send(metricsMessage(envoyNode('envoy-plain'), { [cluster]: numbers(4, 100, { '2xx': 90, '5xx': 10 }) }, t0));
    stream.send(metricsMessage(undefined, { [cluster]: numbers(6, 150, { '2xx': 130, '5xx': 20 }) }, t0 + 1000));
    const sample = await until(() => sink.samples.find((s) => s.revision === 'plain' && s.rps > 0), 'a sample with rates');
    expect(sample).toMatchObject({
      schemaVersion: 1,
      tenant: 'acme',
      service: 'api',
      revision: 'plain',
      concurrency: 6,
      rps: 50,
      responses: { '2xx': 40, '3xx': 0, '4xx': 0, '5xx': 10 },
      errorRatio: 0.2,
      windowMs: 1000,
      nodes: 1,
    });
    const labels = { tenant: 'acme', service: 'api', revision: 'plain' };
    await until(
      async () => (await sink.metric('switchyard_tenant_responses_total', { ...labels, code_class: '5xx' })) === 10,
      '5xx counter',
    );
    expect(await sink.metric('switchyard_tenant_responses_total', { ...labels, code_class: '2xx' })).toBe(40);
    expect(await sink.metric('switchyard_tenant_concurrency', labels)).toBe(6);
    expect(await stream.end()).toEqual({ code: grpc.status.OK, details: '' });
  });

  it('MetricsService with emit_tags_as_labels and report_counters_as_deltas (node metadata)', async () => {
    const stream = new MetricsStream(sink.target);
    const cluster = 'sy_acme_api_tagged';
    const node = envoyNode('envoy-tagged', { metadata: { report_counters_as_deltas: true } });
    stream.send(metricsMessage(node, { [cluster]: numbers(1, 30, { '2xx': 30 }) }, t0, true));
    stream.send(metricsMessage(undefined, { [cluster]: numbers(2, 20, { '2xx': 10, '4xx': 10 }) }, t0 + 2000, true));
    const sample = await until(() => sink.samples.find((s) => s.revision === 'tagged' && s.rps > 0), 'a tagged sample');
    expect(sample).toMatchObject({ concurrency: 2, rps: 10, responses: { '2xx': 5, '4xx': 5 }, windowMs: 2000 });
    // Deltas are counted from the first flush on.
    await until(
      async () => (await sink.metric('switchyard_tenant_responses_total', { revision: 'tagged', code_class: '2xx' })) === 40,
      'delta counters summed',
    );
    await stream.end();
  });

  it('a reconnect with a new first message continues the cumulative counters; a reset counts from zero', async () => {
    const cluster = 'sy_acme_api_reconnect';
    const first = new MetricsStream(sink.target);
    first.send(metricsMessage(envoyNode('envoy-re'), { [cluster]: numbers(1, 100, { '2xx': 100 }) }, t0));
    await until(() => sink.latest('reconnect'), 'first sample');
    await first.end();
    const second = new MetricsStream(sink.target);
    second.send(metricsMessage(envoyNode('envoy-re'), { [cluster]: numbers(3, 130, { '2xx': 130 }) }, t0 + 1000));
    const resumed = await until(() => sink.samples.find((s) => s.revision === 'reconnect' && s.rps > 0), 'rates after reconnect');
    expect(resumed).toMatchObject({ concurrency: 3, rps: 30, nodes: 1 });
    // The cluster was re-created on the Envoy: its counters start again from zero.
    second.send(metricsMessage(undefined, { [cluster]: numbers(0, 25, { '2xx': 20, '5xx': 5 }) }, t0 + 2000));
    const reset = await until(() => sink.samples.find((s) => s.revision === 'reconnect' && s.rps === 25), 'rates after a reset');
    expect(reset.responses).toMatchObject({ '2xx': 20, '5xx': 5 });
    await second.end();
  });

  it('LRS from a client following lrs.proto: send_all_clusters, the interval, then in-flight and rates', async () => {
    const lrs = new LrsStream(sink.target);
    lrs.send({ node: envoyNode('grpc-client-1') });
    const response = await lrs.response(0);
    expect(response.clusters ?? []).toEqual([]);
    expect(response).toMatchObject({
      send_all_clusters: true,
      load_reporting_interval: { seconds: '0', nanos: 200_000_000 },
      report_endpoint_granularity: false,
    });
    lrs.send({ cluster_stats: [clusterStats('sy_acme_api_lrs', [{ inProgress: 7, issued: 14, successful: 12, errors: 2 }], 200)] });
    const sample = await until(() => sink.latest('lrs'), 'an LRS sample');
    expect(sample).toMatchObject({ concurrency: 7, rps: 70, responses: { '2xx': 60, '5xx': 10 }, nodes: 1, windowMs: 200 });
    expect(await lrs.end()).toMatchObject({ code: grpc.status.OK });
  });

  it('LRS clients that cannot be told "send all" get the Switchyard cluster list, kept current', async () => {
    const lister = new LrsStream(sink.target);
    lister.send({ node: envoyNode('old-client', { sendAll: false }) });
    expect(await lister.response(0)).toMatchObject({ send_all_clusters: false });
    const reporter = new LrsStream(sink.target);
    reporter.send({
      node: envoyNode('other-client'),
      cluster_stats: [clusterStats('sy_acme_api_listed', [{ inProgress: 1, issued: 1, successful: 1, errors: 0 }], 200)],
    });
    // The client keeps reporting (nothing) every interval; the next answer lists the new cluster.
    const keepReporting = setInterval(() => lister.send({ cluster_stats: [] }), 200);
    const updated = await until(
      () => lister.responses.find((r) => (r.clusters as string[]).includes('sy_acme_api_listed')),
      'an updated cluster list',
    ).finally(() => clearInterval(keepReporting));
    expect(updated.send_all_clusters).toBe(false);
    lister.close();
    reporter.close();
  });

  it('one node over both LRS and MetricsService is counted once', async () => {
    const cluster = 'sy_acme_api_dual';
    const metrics = new MetricsStream(sink.target);
    metrics.send(metricsMessage(envoyNode('envoy-dual'), { [cluster]: numbers(5, 10, { '2xx': 10 }) }, t0));
    metrics.send(metricsMessage(undefined, { [cluster]: numbers(5, 20, { '2xx': 20 }) }, t0 + 1000));
    const lrs = new LrsStream(sink.target);
    lrs.send({
      node: envoyNode('envoy-dual'),
      cluster_stats: [clusterStats(cluster, [{ inProgress: 5, issued: 99, successful: 99, errors: 0 }], 200)],
    });
    // Whichever arrives first, once MetricsService has rates they win and the gauge is not doubled.
    const sample = await until(() => sink.samples.find((s) => s.revision === 'dual' && s.rps === 10), 'rates from MetricsService');
    expect(sample).toMatchObject({ concurrency: 5, nodes: 1 });
    expect(sink.samples.filter((s) => s.revision === 'dual').every((s) => s.concurrency === 5)).toBe(true);
    metrics.close();
    lrs.close();
  });

  it('a node that stops reporting stops counting after the staleness timeout', async () => {
    const cluster = 'sy_acme_api_gone';
    const staying = new LrsStream(sink.target);
    const leaving = new LrsStream(sink.target);
    staying.send({ node: envoyNode('node-staying') });
    leaving.send({ node: envoyNode('node-leaving') });
    const report = (stream: LrsStream, inProgress: number) =>
      stream.send({ cluster_stats: [clusterStats(cluster, [{ inProgress, issued: 1, successful: 1, errors: 0 }], 200)] });
    report(staying, 3);
    report(leaving, 4);
    const both = await until(() => sink.samples.find((s) => s.revision === 'gone' && s.nodes === 2), 'both nodes counted');
    expect(both.concurrency).toBe(7);
    const staleBefore = (await sink.metric('switchyard_stats_sink_reporters_stale_total', { source: 'lrs' })) ?? 0;
    // node-leaving keeps its stream open but goes silent, as a wedged Envoy would.
    const keepReporting = setInterval(() => report(staying, 3), 200);
    try {
      const after = await until(() => {
        const s = sink.latest('gone');
        return s !== undefined && s.nodes === 1 ? s : undefined;
      }, 'the silent node to go stale');
      expect(after.concurrency).toBe(3);
    } finally {
      clearInterval(keepReporting);
    }
    expect(await sink.metric('switchyard_stats_sink_reporters_stale_total', { source: 'lrs' })).toBeGreaterThan(staleBefore);
    staying.close();
    leaving.close();
  });

  it('closes a stream of garbage bytes with INVALID_ARGUMENT and a reason, counting it', async () => {
    const before = (await sink.metric('switchyard_stats_sink_decode_errors_total', { source: 'metrics' })) ?? 0;
    const status = await rawClientStream(sink.target, metricsPath, [Buffer.from([0xff, 0xff, 0xff, 0x07, 0x01, 0x02, 0x03])]);
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/^cannot decode envoy\.service\.metrics\.v3\.StreamMetricsMessage: /);
    expect(await sink.metric('switchyard_stats_sink_decode_errors_total', { source: 'metrics' })).toBe(before + 1);
  });

  it('closes streams whose first message has no node', async () => {
    const metrics = new MetricsStream(sink.target);
    metrics.send(metricsMessage(undefined, { sy_acme_api_anon: numbers(1, 1, {}) }, t0));
    expect(await metrics.status).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'the first message of a stream must carry identifier.node with a non-empty id',
    });
    const lrs = new LrsStream(sink.target);
    lrs.send({ cluster_stats: [clusterStats('sy_acme_api_anon', [{ inProgress: 1, issued: 1, successful: 1, errors: 0 }], 200)] });
    expect(await lrs.status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('carry node') });
    expect(await sink.metric('switchyard_stats_sink_rejected_messages_total', { source: 'metrics', reason: 'missing_node' })).toBe(1);
    expect(await sink.metric('switchyard_stats_sink_rejected_messages_total', { source: 'lrs', reason: 'missing_node' })).toBe(1);
    expect(sink.samples.some((s) => s.revision === 'anon')).toBe(false);
  });

  it('skips unknown metric types and keeps the rest of the flush', async () => {
    const stream = new MetricsStream(sink.target);
    const message = metricsMessage(envoyNode('envoy-odd'), { sy_acme_api_odd: numbers(2, 1, {}) }, t0);
    (message.envoy_metrics as unknown[]).push({ name: 'cluster.sy_acme_api_odd.upstream_rq_active', type: 42, metric: [] });
    stream.send(message);
    await until(() => sink.latest('odd')?.concurrency === 2, 'the rest of the flush');
    expect(await sink.metric('switchyard_stats_sink_ignored_metric_families_total', { reason: 'unknown_type' })).toBe(1);
    await stream.end();
  });
});

describe('stats-sink limits', () => {
  let nats: NatsServer;
  let current: SinkUnderTest | undefined;

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  it('drops oversized messages and floods unread, counts them, and keeps the stream', async () => {
    const sink = (current = await startSink(nats, { STATS_MAX_MESSAGE_BYTES: 4096, STATS_MAX_STREAM_MESSAGES_PER_S: 5 }));
    const stream = new MetricsStream(sink.target);
    stream.send(metricsMessage(envoyNode('envoy-big'), { sy_acme_api_big: numbers(1, 1, {}) }, t0));
    const huge = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`sy_acme_api_r${i}`, numbers(9, 9, {})]));
    stream.send(metricsMessage(undefined, huge, t0 + 1000));
    await until(
      async () => (await sink.metric('switchyard_stats_sink_rejected_messages_total', { reason: 'oversized' })) === 1,
      'oversized',
    );
    for (let i = 0; i < 30; i++) stream.send(metricsMessage(undefined, { sy_acme_api_big: numbers(2, 1, {}) }, t0 + 2000 + i));
    await until(
      async () => ((await sink.metric('switchyard_stats_sink_rejected_messages_total', { reason: 'rate_limited' })) ?? 0) > 0,
      'rate limiting',
    );
    expect(sink.samples.some((s) => s.revision === 'r0')).toBe(false);
    expect(await stream.end()).toMatchObject({ code: grpc.status.OK });
  });

  it('folds revisions past STATS_MAX_SERIES into the _overflow series and counts them', async () => {
    const sink = (current = await startSink(nats, { STATS_MAX_SERIES: 6 }));
    const lrs = new LrsStream(sink.target);
    lrs.send({
      node: envoyNode('lrs-many'),
      cluster_stats: [
        clusterStats('sy_acme_api_first', [{ inProgress: 1, issued: 1, successful: 1, errors: 0 }], 200),
        clusterStats('sy_acme_api_second', [{ inProgress: 2, issued: 1, successful: 1, errors: 0 }], 200),
        clusterStats('sy_acme_api_third', [{ inProgress: 3, issued: 1, successful: 0, errors: 1 }], 200),
      ],
    });
    await until(async () => (await sink.metric('switchyard_stats_sink_series_overflow_total')) === 2, 'overflow counted');
    const overflow = { tenant: '_overflow', service: '_overflow', revision: '_overflow' };
    await until(async () => (await sink.metric('switchyard_tenant_concurrency', overflow)) === 5, 'overflow concurrency summed');
    expect(await sink.metric('switchyard_tenant_responses_total', { ...overflow, code_class: '5xx' })).toBe(1);
    // Only one revision fits the budget of 6 series; samples on NATS are not limited.
    const published = ['first', 'second', 'third'].filter((r) => sink.samples.some((s) => s.revision === r));
    expect(published).toEqual(['first', 'second', 'third']);
    lrs.close();
  });
});

describe('stats-sink on a shared gRPC server', () => {
  it('registers beside another service on the host server and stops while streams are open', async () => {
    const nats = await NatsServer.start();
    const echo: ServiceModule = {
      name: 'echo',
      start: async (runtime) => {
        runtime.grpcServer.addService(
          {
            Echo: {
              path: '/test.Echo/Echo',
              requestStream: false,
              responseStream: false,
              requestSerialize: (b: Buffer) => b,
              requestDeserialize: (b: Buffer) => b,
              responseSerialize: (b: Buffer) => b,
              responseDeserialize: (b: Buffer) => b,
            },
          },
          { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) },
        );
        return { stop: async () => undefined };
      },
    };
    const sink = await startSink(nats, {}, [echo]);
    try {
      const client = new grpc.Client(sink.target, grpc.credentials.createInsecure());
      const reply = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          '/test.Echo/Echo',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from('hi'),
          (err, value) => (err || value === undefined ? reject(err) : resolve(value)),
        ),
      );
      client.close();
      expect(reply.toString()).toBe('hi');
      const lrs = new LrsStream(sink.target);
      lrs.send({
        node: envoyNode('shared-port'),
        cluster_stats: [clusterStats('sy_acme_api_shared', [{ inProgress: 2, issued: 0, successful: 0, errors: 0 }], 200)],
      });
      await until(() => sink.latest('shared')?.concurrency === 2, 'a sample via the shared port');
      await sink.stop();
      expect(await lrs.status).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'stats-sink is shutting down' });
    } finally {
      await sink.stop();
      await nats.dispose();
    }
  });
});
