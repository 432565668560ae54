import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createLogger } from '@switchyard/shared';
import { createSinkMetrics } from '../src/sink-metrics.js';
import { StreamGuard } from '../src/stream-guard.js';
import { TenantMetrics, overflowLabel } from '../src/tenant-metrics.js';
import type { PublishedLoad } from '../src/load-aggregator.js';
import { metricValue } from './harness.js';

function guard(limits: { maxMessageBytes: number; maxMessagesPerSecond: number }) {
  const registry = new Registry();
  const metrics = createSinkMetrics(registry);
  const warnings: string[] = [];
  const logger = createLogger('test', 'warn');
  logger.warn = ((fields: { reason: string }) => {
    warnings.push(fields.reason);
  }) as typeof logger.warn;
  return { guard: new StreamGuard('lrs', limits, metrics, logger, 0), registry, warnings };
}

describe('StreamGuard', () => {
  it('lets a burst of twice the rate through, then the rate, and drops the rest', () => {
    const { guard: g } = guard({ maxMessageBytes: 100, maxMessagesPerSecond: 5 });
    const small = new Uint8Array(10);
    const admitted = (now: number, count: number) => Array.from({ length: count }, () => g.admit(small, now)).filter(Boolean).length;
    expect(admitted(0, 20)).toBe(10);
    // 400 ms later the bucket holds two more.
    expect(admitted(400, 5)).toBe(2);
    expect(admitted(10_000, 30)).toBe(10);
  });

  it('drops oversized messages unread, counts every drop and logs each reason once per stream', async () => {
    const { guard: g, registry, warnings } = guard({ maxMessageBytes: 100, maxMessagesPerSecond: 1 });
    expect(g.admit(new Uint8Array(101), 0)).toBe(false);
    expect(g.admit(new Uint8Array(101), 0)).toBe(false);
    expect(g.admit(new Uint8Array(100), 0)).toBe(false);
    expect(g.admit(new Uint8Array(100), 5000)).toBe(true);
    const text = await registry.metrics();
    expect(metricValue(text, 'switchyard_stats_sink_rejected_messages_total', { source: 'lrs', reason: 'oversized' })).toBe(2);
    expect(metricValue(text, 'switchyard_stats_sink_rejected_messages_total', { source: 'lrs', reason: 'rate_limited' })).toBe(1);
    expect(metricValue(text, 'switchyard_stats_sink_messages_total', { source: 'lrs' })).toBe(4);
    expect(warnings).toEqual(['oversized', 'rate_limited']);
  });
});

function load(revision: string, concurrency: number, responses: [number, number, number, number]): PublishedLoad {
  return {
    ref: { tenant: 'acme', service: 'api', revision },
    cluster: `sy_acme_api_${revision}`,
    concurrency,
    rps: 0,
    responses: [0, 0, 0, 0],
    errorRatio: 0,
    windowMs: 1000,
    nodes: 1,
    newResponses: responses,
    lagMs: undefined,
  };
}

describe('TenantMetrics', () => {
  const labels = (revision: string) => ({ tenant: 'acme', service: 'api', revision });
  const overflow = { tenant: overflowLabel, service: overflowLabel, revision: overflowLabel };

  it('adds responses up between scrapes and sums folded revisions into the overflow series', async () => {
    const registry = new Registry();
    const tenants = new TenantMetrics(registry, 12);
    tenants.record(load('a', 3, [1, 0, 0, 1]));
    tenants.record(load('b', 4, [2, 0, 0, 0]));
    tenants.record(load('c', 5, [0, 0, 7, 0]));
    tenants.record(load('a', 6, [1, 0, 0, 0]));
    let text = await registry.metrics();
    expect(metricValue(text, 'switchyard_tenant_responses_total', { ...labels('a'), code_class: '2xx' })).toBe(2);
    expect(metricValue(text, 'switchyard_tenant_responses_total', { ...labels('a'), code_class: '3xx' })).toBe(0);
    expect(metricValue(text, 'switchyard_tenant_concurrency', labels('a'))).toBe(6);
    expect(metricValue(text, 'switchyard_tenant_concurrency', labels('c'))).toBeUndefined();
    expect(metricValue(text, 'switchyard_tenant_concurrency', overflow)).toBe(5);
    expect(metricValue(text, 'switchyard_tenant_responses_total', { ...overflow, code_class: '4xx' })).toBe(7);
    expect(metricValue(text, 'switchyard_stats_sink_series_overflow_total', {})).toBe(1);
    expect(metricValue(text, 'switchyard_stats_sink_tenant_series', {})).toBe(12);
    // Counters keep their totals across scrapes; only what came in since is added.
    tenants.record(load('a', 6, [3, 0, 0, 0]));
    text = await registry.metrics();
    expect(metricValue(text, 'switchyard_tenant_responses_total', { ...labels('a'), code_class: '2xx' })).toBe(5);
  });

  it('gives a forgotten revision series back to the budget and takes a folded one out of the overflow sums', async () => {
    const registry = new Registry();
    const tenants = new TenantMetrics(registry, 6);
    tenants.record(load('a', 3, [1, 0, 0, 0]));
    tenants.record(load('b', 4, [0, 0, 0, 0]));
    tenants.forget('sy_acme_api_b');
    tenants.forget('sy_acme_api_a');
    let text = await registry.metrics();
    expect(metricValue(text, 'switchyard_tenant_concurrency', labels('a'))).toBeUndefined();
    expect(metricValue(text, 'switchyard_tenant_concurrency', overflow)).toBe(0);
    tenants.record(load('d', 2, [0, 0, 0, 0]));
    text = await registry.metrics();
    expect(metricValue(text, 'switchyard_tenant_concurrency', labels('d'))).toBe(2);
    expect(metricValue(text, 'switchyard_stats_sink_series_overflow_total', {})).toBe(1);
  });
});
