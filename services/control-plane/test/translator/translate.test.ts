import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TypeUrl, parseClusterName, serviceSpec, type ServiceRecord } from '@switchyard/shared';
import type { ProtoObject } from '../../src/resources.js';
import { defaultTranslateOptions, translate, type DesiredState } from '../../src/translator/index.js';
import { certificateProblems } from '../../src/validation/certificates.js';
import { decodeAsGrpcClient } from './grpc-client.js';
import { serviceRecord, tenantRecord } from './harness.js';

const tenants = [tenantRecord('tenant-a', ['a.test']), tenantRecord('tenant-b', ['b.test'])];

function web(tenant: string, domain: string, port: number, extra: object = {}): ServiceRecord {
  return serviceRecord(tenant, 'web', {
    domains: [domain],
    revisions: [{ name: 'v1', endpoints: [{ address: '10.0.0.1', port }] }],
    ...extra,
  });
}

function state(services: ServiceRecord[]): DesiredState {
  return { tenants, services, endpointSets: new Map(), health: new Map(), now: 0 };
}

function envoy(result: ReturnType<typeof translate>, url: (typeof TypeUrl)[keyof typeof TypeUrl], name: string): ProtoObject | undefined {
  return result.snapshot.envoy.get(url)?.get(name);
}

/** The services Envoy serves: the route configurations that some scope points at, by service id. */
function virtualHostNames(result: ReturnType<typeof translate>): string[] {
  const scopes = [...(result.snapshot.envoy.get(TypeUrl.ScopedRouteConfiguration)?.values() ?? [])];
  return [...new Set(scopes.map((scope) => scope.route_configuration_name as string))].sort();
}

describe('tenant isolation', () => {
  it("keeps translating tenant B's changes while tenant A's input is rejected", () => {
    const badA = web('tenant-a', 'www.a.test', 8080, { routes: [{ match: { regex: '(?!x)' } }] });
    const first = translate(state([badA, web('tenant-b', 'www.b.test', 8080)]));
    const second = translate(state([badA, web('tenant-b', 'www.b.test', 9090)]));

    for (const result of [first, second]) {
      expect(result.errors).toEqual([
        { tenant: 'tenant-a', service: 'web', field: 'spec.routes[0].match.regex', message: expect.stringContaining('RE2') },
      ]);
      expect(virtualHostNames(result)).toEqual(['tenant-b_web']);
      expect(envoy(result, TypeUrl.Cluster, 'sy_tenant-a_web_v1')).toBeUndefined();
    }
    const port = (result: ReturnType<typeof translate>) =>
      JSON.stringify(envoy(result, TypeUrl.ClusterLoadAssignment, 'sy_tenant-b_web_v1')).match(/"port_value":(\d+)/)?.[1];
    expect(port(first)).toBe('8080');
    expect(port(second)).toBe('9090');
  });

  it('does not let a newer service take the domain of a live one', () => {
    const live = { ...web('tenant-a', 'www.a.test', 8080), updatedAt: 10 };
    const newcomer = {
      ...serviceRecord('tenant-a', 'copy', { domains: ['*.a.test'], revisions: [{ name: 'v1', command: 'x' }] }),
      updatedAt: 20,
    };
    for (const services of [
      [live, newcomer],
      [newcomer, live],
    ]) {
      const result = translate(state(services));
      expect(virtualHostNames(result)).toEqual(['tenant-a_web']);
      expect(result.errors.map((e) => `${e.service} ${e.field}`)).toEqual(['copy spec.domains[0]']);
    }
  });

  it('keeps a live service its domains when its tenant updates it', () => {
    const live = { ...web('tenant-a', 'www.a.test', 8080), createdAt: 10, updatedAt: 30 };
    const newcomer = {
      ...serviceRecord('tenant-a', 'copy', { domains: ['www.a.test'], revisions: [{ name: 'v1', command: 'x' }] }),
      createdAt: 20,
      updatedAt: 20,
    };
    expect(virtualHostNames(translate(state([live, newcomer])))).toEqual(['tenant-a_web']);
  });

  it('rejects a service whose tenant grant no longer covers its domain', () => {
    const result = translate({ ...state([web('tenant-a', 'www.a.test', 8080)]), tenants: [tenantRecord('tenant-a', ['other.test'])] });
    expect(virtualHostNames(result)).toEqual([]);
    expect(result.errors[0]?.field).toBe('spec.domains[0]');
  });

  it('checks the grant on every translation, also of a record it has seen before', () => {
    const record = web('tenant-a', 'www.a.test', 8080);
    expect(virtualHostNames(translate(state([record])))).toEqual(['tenant-a_web']);
    const revoked = translate({ ...state([record]), tenants: [tenantRecord('tenant-a', ['elsewhere.test'])] });
    expect(virtualHostNames(revoked)).toEqual([]);
    expect(virtualHostNames(translate(state([record])))).toEqual(['tenant-a_web']);
  });

  it('never lets a tenant change the shared HTTP listener', () => {
    const empty = translate(state([]));
    const busy = translate(
      state([
        web('tenant-a', 'www.a.test', 8080, {
          rateLimit: { requestsPerSecond: 5 },
          headers: { request: { add: [{ name: 'x-a', value: '1' }] } },
        }),
        web('tenant-b', 'www.b.test', 8080, { protocol: 'grpc', timeouts: { request: '1s' } }),
      ]),
    );
    expect(envoy(busy, TypeUrl.Listener, 'http')).toEqual(envoy(empty, TypeUrl.Listener, 'http'));
  });
});

describe('translate', () => {
  const services = [
    web('tenant-a', 'www.a.test', 8080),
    serviceRecord('tenant-b', 'rpc', {
      domains: ['rpc.b.test', '*.rpc.b.test'],
      protocol: 'grpc',
      revisions: [
        { name: 'blue', endpoints: [{ address: '10.0.0.2', port: 50051 }] },
        { name: 'green', command: './server' },
      ],
      traffic: [
        { revision: 'blue', percent: 75 },
        { revision: 'green', percent: 25 },
      ],
    }),
  ];

  it('gives the same output whatever the order of its input', () => {
    const forward = translate(state(services));
    const backward = translate(state([...services].reverse()));
    for (const group of ['envoy', 'grpc'] as const) {
      expect([...backward.snapshot[group]].map(([url, r]) => [url, [...r]])).toEqual(
        [...forward.snapshot[group]].map(([url, r]) => [url, [...r]]),
      );
    }
  });

  it('has every resource type in both groups, and only Switchyard cluster names that map back to their revision', () => {
    const result = translate(state(services));
    for (const group of ['envoy', 'grpc'] as const) {
      expect([...result.snapshot[group].keys()].sort()).toEqual(Object.values(TypeUrl).sort());
      for (const name of result.snapshot[group].get(TypeUrl.Cluster)?.keys() ?? []) {
        expect(name).not.toContain('.');
        expect(parseClusterName(name)).toBeDefined();
      }
    }
    expect(parseClusterName('sy_tenant-b_rpc_green')).toEqual({ tenant: 'tenant-b', service: 'rpc', revision: 'green' });
  });

  it('gives gRPC clients a listener per concrete domain and only gRPC services', () => {
    const result = translate(state(services));
    expect([...(result.snapshot.grpc.get(TypeUrl.Listener)?.keys() ?? [])]).toEqual(['rpc.b.test']);
    expect([...(result.snapshot.grpc.get(TypeUrl.Cluster)?.keys() ?? [])]).toEqual(['sy_tenant-b_rpc_blue', 'sy_tenant-b_rpc_green']);
    expect(result.snapshot.grpc.get(TypeUrl.Secret)?.size).toBe(0);
  });

  it('makes grpc-js-xds pick round robin, cap concurrency, report load, split traffic and retry UNAVAILABLE', () => {
    const result = translate(state(services));
    const cluster = decodeAsGrpcClient(
      TypeUrl.Cluster,
      result.snapshot.grpc.get(TypeUrl.Cluster)?.get('sy_tenant-b_rpc_blue') as ProtoObject,
    );
    expect(cluster.value).toMatchObject({
      type: 'EDS',
      lbPolicyConfig: [{ xds_wrr_locality: { child_policy: [{ round_robin: {} }] } }],
      maxConcurrentRequests: 1024,
    });
    expect((cluster.value as { lrsLoadReportingServer?: unknown }).lrsLoadReportingServer).toBeDefined();
    const routes = decodeAsGrpcClient(
      TypeUrl.RouteConfiguration,
      result.snapshot.grpc.get(TypeUrl.RouteConfiguration)?.get('grpc_tenant-b_rpc') as ProtoObject,
    );
    const route = (routes.value as { virtual_hosts: { routes: { route: Record<string, unknown> }[] }[] }).virtual_hosts[0]?.routes[0]
      ?.route;
    expect(route?.weighted_clusters).toMatchObject({
      clusters: [
        { name: 'sy_tenant-b_rpc_blue', weight: { value: 75 } },
        { name: 'sy_tenant-b_rpc_green', weight: { value: 25 } },
      ],
    });
    expect(route?.retry_policy).toMatchObject({ retry_on: 'unavailable,resource-exhausted', num_retries: { value: 2 } });
    expect(route?.max_stream_duration).toMatchObject({ max_stream_duration: { seconds: '120' } });
  });

  it('turns panic mode off so unhealthy endpoints never get traffic from Envoy', () => {
    const result = translate(state(services));
    for (const cluster of result.snapshot.envoy.get(TypeUrl.Cluster)?.values() ?? []) {
      expect(cluster.common_lb_config).toEqual({ healthy_panic_threshold: { value: 0 } });
    }
  });

  it("overwrites the forwarding headers a client sends, on each service's route configuration and per listener", () => {
    const result = translate(state(services));
    const overwrite = (key: string) => ({ header: { key, value: expect.any(String) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    for (const routes of result.snapshot.envoy.get(TypeUrl.RouteConfiguration)?.values() ?? []) {
      expect(routes.request_headers_to_add).toEqual(['x-forwarded-for', 'x-forwarded-host'].map(overwrite));
      expect(routes.request_headers_to_remove).toEqual(['x-switchyard-scope']);
    }
    const listener = envoy(result, TypeUrl.Listener, 'http') as any;
    const mutation = listener.filter_chains[0].filters[0].typed_config.early_header_mutation_extensions[0].typed_config;
    expect(mutation.mutations).toEqual([
      { append: { header: { key: 'x-switchyard-scope', value: '%REQ(:AUTHORITY)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } },
      { append: { header: { key: 'x-forwarded-port', value: '80' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } },
    ]);
  });

  it('re-parses stored records without changing them (defaults are idempotent)', () => {
    const once = serviceSpec.parse({
      domains: ['www.a.test'],
      revisions: [{ name: 'v1', command: 'x' }],
      healthCheck: { interval: '10s' },
    });
    expect(serviceSpec.parse(once)).toEqual(once);
    const fromParsed = translate(state([serviceRecord('tenant-a', 'web', once)]));
    const fromInput = translate(
      state([
        serviceRecord('tenant-a', 'web', {
          domains: ['www.a.test'],
          revisions: [{ name: 'v1', command: 'x' }],
          healthCheck: { interval: '10s' },
        }),
      ]),
    );
    expect(fromParsed.snapshot).toEqual(fromInput.snapshot);
  });

  it('returns the very same objects for resources that did not change', () => {
    const records = state(services);
    const first = translate(records);
    const moved = translate({
      ...records,
      health: new Map([['sy_tenant-b_rpc_blue', new Map([['10.0.0.2:50051', { state: 'unhealthy' as const, since: 0 }]])]]),
    });
    for (const group of ['envoy', 'grpc'] as const) {
      const clusters = (result: typeof first) => result.snapshot[group].get(TypeUrl.Cluster);
      for (const [name, cluster] of clusters(first) ?? []) expect(clusters(moved)?.get(name)).toBe(cluster);
      const assignment = (result: typeof first) => result.snapshot[group].get(TypeUrl.ClusterLoadAssignment)?.get('sy_tenant-b_rpc_blue');
      expect(JSON.stringify(assignment(moved))).toContain('UNHEALTHY');
      expect(JSON.stringify(assignment(first))).not.toContain('UNHEALTHY');
    }
    expect(envoy(moved, TypeUrl.Listener, 'http')).toBe(envoy(first, TypeUrl.Listener, 'http'));
  });

  it('uses the default options when none are given', () => {
    expect(translate(state([]))).toEqual(translate(state([]), defaultTranslateOptions));
  });
});

describe('certificateProblems', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const tls = (file: string, i: number) =>
    (
      parse(readFileSync(join(here, 'testdata/in', file), 'utf8')) as {
        services: { spec: { tls: { certificateChain: string; privateKey: string } } }[];
      }
    ).services[i]?.spec.tls as { certificateChain: string; privateKey: string };

  it('accepts a certificate with its own key', () => {
    const { certificateChain, privateKey } = tls('tls.yaml', 0);
    expect(certificateProblems(certificateChain, privateKey)).toEqual([]);
  });

  it("refuses another certificate's key and unreadable PEM", () => {
    const mismatched = tls('tls-invalid.yaml', 0);
    expect(certificateProblems(mismatched.certificateChain, mismatched.privateKey)).toEqual([
      { field: 'tls.privateKey', message: 'does not belong to the first certificate of certificateChain' },
    ]);
    const good = tls('tls.yaml', 0);
    expect(certificateProblems(good.certificateChain, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')[0]?.field).toBe(
      'tls.privateKey',
    );
  });
});
