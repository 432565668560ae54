import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XdsCache } from '../../src/xds/index.js';
import {
  WhoClient,
  bootstrapFor,
  callName,
  cluster,
  endpoints,
  listener,
  metricValue,
  route,
  snapshotOf,
  startBackend,
  startXds,
  waitFor,
  type ConfigSpec,
  type RunningXds,
} from './helpers.js';

/**
 * @grpc/grpc-js-xds as a real data plane: a gRPC client with an xds:/// target resolves
 * Listener → RouteConfiguration → Cluster (EDS) → ClusterLoadAssignment from our server and
 * sends RPCs to real backends.
 */
describe('grpc-js-xds against the xDS server', () => {
  const backends: { port: number; stop: () => void }[] = [];
  let blue: { port: number };
  let green: { port: number };
  let running: RunningXds | undefined;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    xds.register();
    blue = await startBackend('blue');
    green = await startBackend('green');
    backends.push(blue as never, green as never);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await running?.stop();
    running = undefined;
  });
  afterAll(() => backends.forEach((b) => b.stop()));

  const config = (ports: number[], clusterExtra = {}): ConfigSpec => ({
    listeners: [listener('greeter', 'greeter-route')],
    routes: [route('greeter-route', 'greeter-cluster')],
    clusters: [cluster('greeter-cluster', clusterExtra)],
    endpoints: [endpoints('greeter-cluster', ports)],
  });

  const client = (port: number, nodeId: string) => {
    const c = new WhoClient('xds:///greeter', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': bootstrapFor(port, nodeId),
    });
    clients.push(c);
    return c;
  };

  const answers = (c: grpc.Client, name: string) => waitFor(`RPCs answered by ${name}`, async () => (await callName(c, 1000)) === name);

  it('ACKs every type and routes RPCs to the endpoints it was given', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(config([blue.port])));
    const c = client(running.port, 'node-ack');
    await answers(c, 'blue');

    const node = await waitFor('all four types ACKed', () => {
      const n = running!.xds.nodes().find((x) => x.nodeId === 'node-ack');
      return n && ['lds', 'rds', 'cds', 'eds'].every((t) => n.types[t as 'lds']?.status === 'ACKED') && n;
    });
    expect(node.group).toBe('grpc');
    expect(['lds', 'rds', 'cds', 'eds'].every((t) => node.types[t as 'lds']?.upToDate)).toBe(true);
    expect(node.userAgent.name).toBe('gRPC Node Pure JS');
    expect(node.types.cds?.subscribed).toBe(1);
    expect(running.events.some((e) => e.event === 'connect' && e.nodeId === 'node-ack')).toBe(true);
    expect(running.events.filter((e) => e.event === 'ack').map((e) => e.typeUrl)).toEqual(
      expect.arrayContaining([expect.stringContaining('Listener'), expect.stringContaining('ClusterLoadAssignment')]),
    );

    // An endpoint change alone reaches the client and moves its traffic.
    running.cache.setSnapshot(snapshotOf(config([green.port])));
    await answers(c, 'green');
  });

  it('records a NACK, keeps serving the last good config and does not resend the rejected version', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(config([blue.port])));
    const c = client(running.port, 'node-nack');
    await answers(c, 'blue');
    const cdsPushesBefore = await metricValue(running.registry, 'switchyard_xds_pushes_total', { type: 'cds' });

    // grpc-js-xds supports only a few lb policies: MAGLEV is rejected.
    running.cache.setSnapshot(snapshotOf(config([blue.port], { lb_policy: 'MAGLEV' })));
    const nacked = await waitFor('the NACK in the node state', () => {
      const nack = running!.xds.nodes().find((x) => x.nodeId === 'node-nack')?.types.cds?.lastNack;
      return nack ?? undefined;
    });
    expect(nacked.errorDetail).toContain('MAGLEV');
    expect(running.xds.nodes().find((x) => x.nodeId === 'node-nack')?.types.cds?.upToDate).toBe(false);
    expect(running.events.some((e) => e.event === 'nack' && e.error?.includes('MAGLEV'))).toBe(true);
    expect(await metricValue(running.registry, 'switchyard_xds_nacks_total', { type: 'cds' })).toBe(1);
    expect(await callName(c)).toBe('blue');

    // An endpoint change still flows (EDS is independent of the rejected CDS version); by the
    // time it has arrived, a NACK loop would have resent CDS many times.
    const badCluster = config([green.port], { lb_policy: 'MAGLEV' });
    running.cache.setSnapshot(snapshotOf(badCluster));
    await answers(c, 'green');
    expect(await metricValue(running.registry, 'switchyard_xds_pushes_total', { type: 'cds' })).toBe(cdsPushesBefore + 1);
    expect(await metricValue(running.registry, 'switchyard_xds_nacks_total', { type: 'cds' })).toBe(1);

    // The node state names the rejected cluster; a new cluster makes CDS go out again, carrying
    // the rejected one at the version the client kept, so it is ACKed, not NACKed again.
    expect(running.xds.nodes().find((x) => x.nodeId === 'node-nack')?.types.cds?.rejected).toEqual([
      { name: 'greeter-cluster', version: expect.any(String) },
    ]);
    // (grpc-js-xds asks for clusters by name: a second route makes it ask for a second one.)
    const twoRoutes = route('greeter-route', 'greeter-cluster');
    const vhost = (twoRoutes.virtual_hosts as { routes: unknown[] }[])[0]!;
    vhost.routes.unshift({ match: { prefix: '/never.Used/' }, route: { cluster: 'other-cluster' } });
    running.cache.setSnapshot(
      snapshotOf({
        ...badCluster,
        routes: [twoRoutes],
        clusters: [...badCluster.clusters!, cluster('other-cluster')],
        endpoints: [...badCluster.endpoints!, endpoints('other-cluster', [green.port])],
      }),
    );
    await waitFor(
      'CDS with the new cluster ACKed',
      () => running!.xds.nodes().find((x) => x.nodeId === 'node-nack')?.types.cds?.status === 'ACKED',
    );
    expect(await metricValue(running.registry, 'switchyard_xds_nacks_total', { type: 'cds' })).toBe(1);
    expect(await callName(c)).toBe('green');

    // A fixed config goes out and is ACKed.
    running.cache.setSnapshot(snapshotOf(config([green.port])));
    await waitFor('CDS ACKed again', () => running!.xds.nodes().find((x) => x.nodeId === 'node-nack')?.types.cds?.status === 'ACKED');
  });

  it('deletes: a removed listener makes RPCs fail, and it comes back when re-added', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(config([blue.port])));
    const c = client(running.port, 'node-delete');
    await answers(c, 'blue');

    running.cache.setSnapshot(snapshotOf({ ...config([blue.port]), listeners: [] }));
    await waitFor('RPCs failing after the listener was deleted', async () => {
      try {
        await callName(c, 500);
        return false;
      } catch (err) {
        return (err as grpc.ServiceError).code === grpc.status.UNAVAILABLE;
      }
    });

    // grpc-js-xds ignores a re-added listener identical to the one it cached before the
    // deletion (it compares with its stale cache), so the re-added one differs slightly.
    const readded = listener('greeter', 'greeter-route');
    (readded.api_listener as { api_listener: { stat_prefix: string } }).api_listener.stat_prefix = 'greeter-again';
    running.cache.setSnapshot(snapshotOf({ ...config([green.port]), listeners: [readded] }));
    await answers(c, 'green');
  });

  it('reconnects to a restarted control plane and picks up the new state', async () => {
    running = await startXds();
    const port = running.port;
    running.cache.setSnapshot(snapshotOf(config([blue.port])));
    const c = client(port, 'node-reconnect');
    await answers(c, 'blue');

    await running.stop();
    // The old config keeps working while the control plane is away.
    expect(await callName(c)).toBe('blue');

    const cache = new XdsCache();
    running = await startXds({ cache, port });
    // Not ready yet: the reconnected client's requests are held, not answered.
    await waitFor('the client reconnected', () => running!.xds.streamCount > 0);
    expect(running.xds.nodes().find((n) => n.nodeId === 'node-reconnect')?.types.lds?.sentVersion ?? '').toBe('');
    cache.setSnapshot(snapshotOf(config([green.port])));
    await answers(c, 'green');
  });
});
