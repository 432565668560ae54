import { describe, expect, it } from 'vitest';
import { serviceSpec, type RevisionSpec } from '@switchyard/shared';
import type { ProtoObject } from '../../src/resources.js';
import { defaultTranslateOptions } from '../../src/translator/desired-state.js';
import { throughActivator } from '../../src/translator/endpoints.js';
import { activatorRouting } from '../../src/translator/envoy/features/activator-headers.js';
import type { EndpointIR, RouteIR, ServiceIR } from '../../src/translator/ir.js';

const activator = [
  { address: '10.1.0.9', port: 8012 },
  { address: '10.1.0.10', port: 8012 },
];
const viaActivator: EndpointIR[] = [
  { address: '10.1.0.9', port: 8012, status: 'HEALTHY' },
  { address: '10.1.0.10', port: 8012, status: 'HEALTHY' },
];
const managed: RevisionSpec = { name: 'v1', command: './server', env: {} };
const staticRevision: RevisionSpec = { name: 'v1', env: {}, endpoints: [{ address: '10.0.0.1', port: 80 }] };
const base = { domains: ['api.acme.test'], revisions: [managed] };
const toZero = serviceSpec.parse({ ...base, scaling: { minInstances: 0 } });
const one = (status: EndpointIR['status']): EndpointIR[] => [{ address: '10.0.0.2', port: 80, status }];

describe('throughActivator', () => {
  const cases: {
    label: string;
    revision?: RevisionSpec;
    spec?: object;
    endpoints: EndpointIR[];
    configured?: boolean;
    want: EndpointIR[];
  }[] = [
    { label: 'no endpoint at all: every activator replica', endpoints: [], want: viaActivator },
    { label: 'only draining endpoints: the activator', endpoints: one('DRAINING'), want: viaActivator },
    { label: 'only unhealthy endpoints: the activator', endpoints: one('UNHEALTHY'), want: viaActivator },
    { label: 'a ready endpoint of unknown health: the instances', endpoints: one('UNKNOWN'), want: one('UNKNOWN') },
    { label: 'a healthy endpoint: the instances', endpoints: one('HEALTHY'), want: one('HEALTHY') },
    { label: 'no activator configured: unchanged', endpoints: [], configured: false, want: [] },
    { label: 'minInstances 1: unchanged (never meant to be at zero)', endpoints: [], spec: serviceSpec.parse(base), want: [] },
    {
      label: 'gRPC service: the activator (it speaks HTTP/2)',
      endpoints: [],
      spec: serviceSpec.parse({ ...base, protocol: 'grpc', scaling: { minInstances: 0 } }),
      want: viaActivator,
    },
    { label: 'static revision: unchanged', revision: staticRevision, endpoints: [], want: [] },
  ];
  for (const c of cases) {
    it(c.label, () => {
      const spec = (c.spec ?? toZero) as typeof toZero;
      expect(throughActivator(c.revision ?? managed, spec, c.endpoints, c.configured === false ? undefined : activator)).toEqual(c.want);
    });
  }
});

describe('activator headers on the route', () => {
  const route: RouteIR = { name: 'r', path: { kind: 'prefix', value: '/' }, headers: [], queryParams: [], timeoutMs: 30_000 };
  const service = (protocol: 'http' | 'grpc') => ({ tenant: 'acme', name: 'api', id: 'acme_api', protocol }) as ServiceIR;
  const split = (): ProtoObject => ({ weighted_clusters: { clusters: [{ name: 'sy_acme_api_blue' }, { name: 'sy_acme_api_green' }] } });
  const clusters = (action: ProtoObject) => (action.weighted_clusters as { clusters: ProtoObject[] }).clusters;

  it.each(['http', 'grpc'] as const)(
    'each weighted cluster names its revision and the route timeout, overwriting a client value (%s)',
    (protocol) => {
      const action = split();
      activatorRouting.routeAction?.(action, route, service(protocol), {
        group: 'envoy',
        options: { ...defaultTranslateOptions, activator },
      });
      expect(clusters(action).map((c) => c.request_headers_to_add)).toEqual(
        ['sy_acme_api_blue', 'sy_acme_api_green'].map((name) => [
          { header: { key: 'x-switchyard-revision', value: name }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          { header: { key: 'x-switchyard-timeout-ms', value: '30000' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        ]),
      );
    },
  );

  it.each([
    ['no activator', defaultTranslateOptions, 'envoy', 'http'],
    ['proxyless gRPC clients', { ...defaultTranslateOptions, activator }, 'grpc', 'http'],
  ] as const)('adds nothing for %s', (_label, options, group, protocol) => {
    const action = split();
    activatorRouting.routeAction?.(action, route, service(protocol), { group, options });
    expect(clusters(action).every((c) => c.request_headers_to_add === undefined)).toBe(true);
  });
});
