import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpEcho } from '@switchyard/demo';
import { heldByEnvoy, startEnvoyWorld, unversionedInDump, type Dump, type EnvoyWorld, type Served } from './support.js';
import { LoadLoop, eventually } from '../support/stack.js';

type Echo = Awaited<ReturnType<typeof startHttpEcho>>;

/**
 * Issue 10: the control plane restarts while a real Envoy carries continuous HTTP traffic.
 * Envoy keeps routing on its last config while the control plane is away, reconnects, and
 * is served the same versions it holds: nothing is pushed again, no request fails.
 */
describe('a control-plane restart under traffic through Envoy', () => {
  let world: EnvoyWorld;
  let load: LoadLoop | undefined;
  const echoes: Echo[] = [];

  const served = async () => (await (await fetch(`${world.stack.adminUrl}/v1/xds/resources`)).json()) as Served;
  const nodeState = async () => {
    const { nodes } = (await world.api.ok('GET', '/v1/nodes')) as {
      nodes: { id: string; resources: { status: string; upToDate: boolean }[] }[];
    };
    return nodes.find((n) => n.id === world.envoy.nodeId);
  };

  beforeAll(async () => {
    for (const revision of ['blue', 'green'])
      echoes.push(await startHttpEcho(0, { revision, host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 }));
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      revisions: echoes.map((e, i) => ({ name: i === 0 ? 'blue' : 'green', endpoints: [{ address: '127.0.0.1', port: e.port }] })),
      traffic: [
        { revision: 'blue', percent: 50 },
        { revision: 'green', percent: 50 },
      ],
    });
  }, 30_000);

  afterAll(async () => {
    await load?.stop();
    await world?.stop();
    for (const echo of echoes) await echo.close();
  });

  it('keeps every request succeeding, and Envoy holds the same config versions afterwards', async () => {
    await world.until('web.acme.test', '/', (a) => a.status === 200);
    load = new LoadLoop(world.echoClient('web.acme.test'), 8, 20);
    await eventually(() => load!.current.byRevision.size === 2, 10_000, 50);
    const status = async () => (await world.api.ok('GET', '/v1/tenants/acme/services/web')).status as { xds: { version: string } };
    const versionBefore = (await status()).xds.version;
    const heldBefore = heldByEnvoy((await world.envoy.configDump(true)) as Dump);
    await eventually(async () => (await nodeState())?.resources.every((r) => r.status === 'ACKED' && r.upToDate) === true, 10_000, 50);

    load.mark();
    const stoppedAt = Date.now();
    await world.restartStack();
    const restartMs = Date.now() - stoppedAt;
    const duringRestart = load.mark();
    // Envoy reconnects and is up to date again without any new version.
    await eventually(async () => (await world.envoy.stat('control_plane.connected_state')) === 1, 15_000, 100);
    await eventually(async () => (await nodeState())?.resources.every((r) => r.status === 'ACKED' && r.upToDate) === true, 15_000, 100);
    const reconnectedMs = Date.now() - stoppedAt;
    await eventually(() => load!.current.ok >= 50, 10_000, 50);
    const total = await load.stop();
    load = undefined;

    expect(duringRestart.ok).toBeGreaterThan(0);
    expect(total.failed, total.errors.join('\n')).toBe(0);
    expect(total.byRevision.size).toBe(2);
    expect((await status()).xds.version).toBe(versionBefore);
    const heldAfter = heldByEnvoy((await world.envoy.configDump(true)) as Dump);
    expect(heldAfter).toEqual(heldBefore);
    // And it is what the restarted control plane serves.
    const now = await served();
    for (const type of ['cds', 'lds', 'rds', 'srds', 'ecds'] as const) {
      expect(heldAfter[type]).toEqual(
        Object.fromEntries(now.envoy[type].map((r) => [r.name, unversionedInDump.has(type) ? 'held' : r.version])),
      );
    }
    console.log(JSON.stringify({ restartMs, reconnectedMs, requests: total.ok, duringRestart: duringRestart.ok }));
  }, 60_000);
});
