import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { makeCertificate } from './certs.js';
import { echoOf, heldByEnvoy, httpsGet, startEnvoyWorld, unversionedInDump, type Dump, type EnvoyWorld, type Served } from './support.js';
import { eventually } from '../support/stack.js';

describe('Envoy 1.40 on delta ADS', () => {
  let world: EnvoyWorld;
  let backend: TestBackend;
  const certificate = makeCertificate(['web.acme.test']);

  beforeAll(async () => {
    backend = await TestBackend.start('web');
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: [{ name: 'v1', endpoints: [backend.endpoint] }],
      tls: certificate,
    });
  });
  afterAll(async () => {
    await world?.stop();
    await backend?.stop();
  });

  it('ACKs every resource type, and /v1/nodes says so', async () => {
    const node = await eventually(async () => {
      const nodes = (await world.api.ok('GET', '/v1/nodes')) as { nodes: any[] } | any[];
      const found = (Array.isArray(nodes) ? nodes : nodes.nodes).find((n: any) => n.id === world.envoy.nodeId);
      const resources = (found?.resources ?? []) as { typeUrl: string; status: string; upToDate: boolean; mode: string }[];
      expect(resources.map((r) => r.typeUrl.split('.').at(-1)).sort()).toEqual([
        'Cluster',
        'ClusterLoadAssignment',
        'Listener',
        'RouteConfiguration',
        'ScopedRouteConfiguration',
        'Secret',
        'TypedExtensionConfig',
      ]);
      for (const r of resources) if (r.status !== 'ACKED' || !r.upToDate) throw new Error(`not ACKED: ${JSON.stringify(r)}`);
      return found;
    });
    expect(node.userAgent).toBe('envoy');
    expect(new Set(node.resources.map((r: any) => r.mode))).toEqual(new Set(['delta']));
    expect(await world.envoy.stat('control_plane.connected_state')).toBe(1);
  });

  it('holds in /config_dump exactly what was served (names and versions)', async () => {
    await eventually(async () => {
      const served = (await (await fetch(`${world.stack.adminUrl}/v1/xds/resources`)).json()) as Served;
      const held = heldByEnvoy((await world.envoy.configDump(true)) as Dump);
      for (const type of ['cds', 'eds', 'lds', 'rds', 'srds', 'ecds', 'sds'] as const) {
        const want = Object.fromEntries(served.envoy[type].map((r) => [r.name, unversionedInDump.has(type) ? 'held' : r.version]));
        expect(held[type], type).toEqual(want);
      }
    });
    const endpoints = (await world.envoy.configDump(true)).configs.find((c) => c['@type'].endsWith('EndpointsConfigDump')) as any;
    const web = endpoints.dynamic_endpoint_configs.find((e: any) => e.endpoint_config.cluster_name === 'sy_acme_web_v1');
    expect(web.endpoint_config.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address)).toEqual([
      { address: '127.0.0.1', port_value: backend.port },
    ]);
  });

  it('serves the tenant over HTTP and HTTPS (SNI) through the listeners it was given', async () => {
    const answer = await world.until('web.acme.test', '/hello', (a) => a.status === 200);
    expect(echoOf(answer)).toMatchObject({ backend: 'web', path: '/hello' });
    expect((await world.http('nobody.example', '/')).status).toBe(404);
    const tls = await httpsGet(world.stack.envoyHttpsPort, 'web.acme.test', '/secure', certificate.certificateChain);
    expect(tls.status).toBe(200);
    expect(echoOf(tls)).toMatchObject({ backend: 'web', path: '/secure' });
  });
});
