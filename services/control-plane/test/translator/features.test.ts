import { describe, expect, it } from 'vitest';
import { serviceSpec } from '@switchyard/shared';
import type { ProtoObject } from '../../src/resources.js';
import { defaultTranslateOptions } from '../../src/translator/desired-state.js';
import { localRateLimit } from '../../src/translator/envoy/features/local-rate-limit.js';
import { healthChecks } from '../../src/translator/envoy/features/health-checks.js';
import { grpcRetryConditions, perTryTimeoutMs, retries } from '../../src/translator/envoy/features/retries.js';
import { timeouts } from '../../src/translator/envoy/features/timeouts.js';
import { httpListener } from '../../src/translator/envoy/listeners.js';
import { headerMatcher, queryMatcher, routeAppliesTo, routeMatch } from '../../src/translator/envoy/route-match.js';
import type { RouteIR, ServiceIR } from '../../src/translator/ir.js';

/** A retry spec with the defaults filled, as a stored service has it. */
function retrySpec(spec: object = {}): NonNullable<ServiceIR['retry']> {
  return serviceSpec.parse({ domains: ['a.test'], revisions: [{ name: 'v1', command: 'x' }], retries: spec }).retries;
}

const route: RouteIR = { name: 'r', path: { kind: 'prefix', value: '/' }, headers: [], queryParams: [], timeoutMs: 30_000 };

function service(overrides: Partial<ServiceIR> = {}): ServiceIR {
  return { tenant: 'acme', name: 'api', id: 'acme_api', protocol: 'http', retry: retrySpec({}), ...overrides } as ServiceIR;
}

describe('retries', () => {
  it.each([
    [{}, ['unavailable', 'resource-exhausted']],
    [{ on: ['reset'] }, ['unavailable']],
    [{ on: ['retriable-status-codes'], statusCodes: [429] }, ['resource-exhausted']],
    [{ on: ['retriable-status-codes'], statusCodes: [500] }, []],
  ])('maps %j to gRPC conditions %j', (spec, expected) => {
    expect(grpcRetryConditions(retrySpec(spec))).toEqual(expected);
  });

  it('retries on another instance in Envoy, with gRPC conditions added for gRPC services', () => {
    const action: ProtoObject = {};
    retries.routeAction?.(action, route, service({ protocol: 'grpc' }), { group: 'envoy', options: defaultTranslateOptions });
    expect(action.retry_policy).toMatchObject({
      retry_on: '5xx,reset,connect-failure,retriable-status-codes,unavailable,resource-exhausted',
      retriable_status_codes: [429],
      retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
      per_try_timeout: { seconds: 30, nanos: 0 },
    });
  });

  it.each([
    ['the default 30 s per try on a 120 s route', {}, 120_000, 120_000],
    ['1 s per try on a 5 s route', { perTryTimeout: '1s' }, 5_000, 5_000],
    ['a per try above the route timeout', { perTryTimeout: '10s' }, 5_000, 10_000],
    ['a route without timeout', {}, 0, undefined],
  ])('never cuts an attempt before the route timeout: %s', (_label, spec, routeTimeoutMs, expected) => {
    expect(perTryTimeoutMs(retrySpec(spec), { ...route, timeoutMs: routeTimeoutMs })).toBe(expected);
  });

  it('sends gRPC clients no retry policy that names no gRPC condition', () => {
    const action: ProtoObject = {};
    retries.routeAction?.(action, route, service({ retry: retrySpec({ on: ['retriable-status-codes'], statusCodes: [500] }) }), {
      group: 'grpc',
      options: defaultTranslateOptions,
    });
    expect(action.retry_policy).toBeUndefined();
  });
});

describe('active health checks', () => {
  const options = { ...defaultTranslateOptions, activeHealthChecks: { eventLogPath: '/tmp/hc.jsonl' } };
  const check = (protocol: 'tcp' | 'http') => ({
    ...serviceSpec.parse({ domains: ['a.test'], revisions: [{ name: 'v1', command: 'x' }] }).healthCheck,
    protocol,
    path: '/healthz',
  });
  it.each([
    ['http', 'http', { http_health_check: { path: '/healthz' } }],
    ['grpc', 'http', { grpc_health_check: {} }],
    ['http', 'tcp', { tcp_health_check: {} }],
    ['grpc', 'tcp', { tcp_health_check: {} }],
  ] as const)('a %s service with a %s check gets %j', (protocol, checkProtocol, probe) => {
    const cluster: ProtoObject = {};
    healthChecks.cluster?.(cluster, service({ protocol, healthCheck: check(checkProtocol) }), { group: 'envoy', options });
    expect((cluster.health_checks as ProtoObject[])[0]).toMatchObject(probe);
  });

  it('is off unless the operator turns it on', () => {
    const cluster: ProtoObject = {};
    healthChecks.cluster?.(cluster, service({ healthCheck: check('http') }), { group: 'envoy', options: defaultTranslateOptions });
    expect(cluster.health_checks).toBeUndefined();
  });
});

describe('local rate limit', () => {
  it('is a pass-through filter on the listener and an enabled, enforced bucket on the virtual host', () => {
    expect(localRateLimit.httpFilter?.(defaultTranslateOptions)).toMatchObject({ typed_config: { stat_prefix: 'local_rate_limit' } });
    expect(JSON.stringify(localRateLimit.httpFilter?.(defaultTranslateOptions))).not.toContain('token_bucket');
    const virtualHost: ProtoObject = {};
    localRateLimit.virtualHost?.(virtualHost, service({ rateLimit: { requestsPerSecond: 10, burst: 20 } }), {
      group: 'envoy',
      options: defaultTranslateOptions,
    });
    const config = (virtualHost.typed_per_filter_config as Record<string, ProtoObject>)['envoy.filters.http.local_ratelimit'];
    expect(config).toMatchObject({
      token_bucket: { max_tokens: 20, tokens_per_fill: { value: 10 }, fill_interval: { seconds: 1, nanos: 0 } },
      filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
      filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    });
  });

  it('leaves gRPC clients and unlimited services alone', () => {
    const virtualHost: ProtoObject = {};
    localRateLimit.virtualHost?.(virtualHost, service({ rateLimit: { requestsPerSecond: 10, burst: 10 } }), {
      group: 'grpc',
      options: defaultTranslateOptions,
    });
    localRateLimit.virtualHost?.(virtualHost, service(), { group: 'envoy', options: defaultTranslateOptions });
    expect(virtualHost).toEqual({});
  });
});

describe('timeouts', () => {
  it('gives Envoy a route timeout and gRPC clients a max stream duration', () => {
    const envoyAction: ProtoObject = {};
    const grpcAction: ProtoObject = {};
    timeouts.routeAction?.(envoyAction, route, service({ idleTimeoutMs: 60_000 }), { group: 'envoy', options: defaultTranslateOptions });
    timeouts.routeAction?.(grpcAction, route, service({ protocol: 'grpc' }), { group: 'grpc', options: defaultTranslateOptions });
    expect(envoyAction).toEqual({ timeout: { seconds: 30, nanos: 0 }, idle_timeout: { seconds: 60, nanos: 0 } });
    expect(grpcAction).toEqual({
      max_stream_duration: { max_stream_duration: { seconds: 30, nanos: 0 }, grpc_timeout_header_max: { seconds: 30, nanos: 0 } },
    });
  });
});

describe('route matchers', () => {
  it.each([
    [
      { name: 'X-A', exact: 'v', invert: false },
      { name: 'x-a', string_match: { exact: 'v' } },
    ],
    [
      { name: 'x-a', prefix: 'v', invert: true },
      { name: 'x-a', string_match: { prefix: 'v' }, invert_match: true },
    ],
    [
      { name: 'x-a', regex: 'v+', invert: false },
      { name: 'x-a', string_match: { safe_regex: { regex: 'v+' } } },
    ],
    [
      { name: 'x-a', present: true as const, invert: false },
      { name: 'x-a', present_match: true },
    ],
    [
      { name: 'x-a', range: { start: 1, end: 9 }, invert: false },
      { name: 'x-a', range_match: { start: 1, end: 9 } },
    ],
  ])('header %j', (header, expected) => {
    expect(headerMatcher(header, 'envoy')).toEqual(expected);
  });

  it('groups regexes for gRPC clients, which anchor them without a group', () => {
    expect(headerMatcher({ name: 'x-a', regex: 'a|b', invert: false }, 'grpc')).toEqual({
      name: 'x-a',
      string_match: { safe_regex: { regex: '(?:a|b)' } },
    });
    const regexRoute: RouteIR = { ...route, path: { kind: 'regex', value: '/a|/b' } };
    expect(routeMatch(regexRoute, 'grpc')).toEqual({ safe_regex: { regex: '(?:/a|/b)' } });
    expect(routeMatch(regexRoute, 'envoy')).toEqual({ safe_regex: { regex: '/a|/b' } });
  });

  it('matches query parameters by value or presence', () => {
    expect(queryMatcher({ name: 'q', present: true })).toEqual({ name: 'q', present_match: true });
    expect(queryMatcher({ name: 'q', exact: 'x' })).toEqual({ name: 'q', string_match: { exact: 'x' } });
  });

  it('keeps routes with query matchers away from gRPC clients', () => {
    const withQuery = { ...route, queryParams: [{ name: 'q', present: true as const }] };
    expect(routeAppliesTo(withQuery, 'envoy')).toBe(true);
    expect(routeAppliesTo(withQuery, 'grpc')).toBe(false);
    expect(routeAppliesTo(route, 'grpc')).toBe(true);
  });
});

describe("headers the router owns on Envoy's shared listeners", () => {
  const hcm = (name: string) => {
    const listener = httpListener(defaultTranslateOptions) as any;
    return listener.filter_chains[0].filters.find((f: ProtoObject) => f.name === name).typed_config;
  };

  it('strips client-sent x-envoy-* headers before any filter but the scope key runs', () => {
    const filters = hcm('envoy.filters.network.http_connection_manager').http_filters as ProtoObject[];
    expect(filters[0]).toMatchObject({ name: 'switchyard.scope_key', config_discovery: { config_source: { ads: {} } } });
    expect(filters[1]).toMatchObject({ name: 'envoy.filters.http.lua', typed_config: { stat_prefix: 'strip_envoy_headers' } });
    expect((filters[1] as any).typed_config.default_source_code.inline_string).toContain('== "x-envoy-"');
  });

  it("passes the instance's Server header through, so tenant rules can remove or set it", () => {
    expect(hcm('envoy.filters.network.http_connection_manager').server_header_transformation).toBe('PASS_THROUGH');
  });
});
