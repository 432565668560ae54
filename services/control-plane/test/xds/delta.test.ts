import { afterEach, describe, expect, it } from 'vitest';
import { TypeUrl } from '@switchyard/shared';
import { DeltaClient, type DeltaResponse } from './delta-client.js';
import {
  cluster,
  endpoints,
  listener,
  metricValue,
  route,
  snapshotOf,
  startXds,
  waitFor,
  type ConfigSpec,
  type RunningXds,
} from './helpers.js';

const EDS = TypeUrl.ClusterLoadAssignment;
const CDS = TypeUrl.Cluster;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

const names = (r: DeltaResponse) => r.resources.map((x) => x.name).sort();

describe('delta xDS', () => {
  let running: RunningXds | undefined;
  const clients: DeltaClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await running?.stop();
    running = undefined;
  });
  const connect = (nodeId: string) => {
    const c = new DeltaClient(running!.port, nodeId);
    clients.push(c);
    return c;
  };
  const eds = (spec: Record<string, number[]>): ConfigSpec => ({
    endpoints: Object.entries(spec).map(([name, ports]) => endpoints(name, ports)),
  });

  it('holds requests until the cache is ready, then answers', async () => {
    running = await startXds();
    const c = connect('held');
    c.send({ type_url: EDS, resource_names_subscribe: ['a'] });
    await waitFor('the request to be held', async () => (await metricValue(running!.registry, 'switchyard_xds_held_requests')) === 1);
    expect(c.pending).toBe(0);
    expect(running.xds.nodes()[0]?.types).toEqual({});
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001] })));
    const first = await c.next();
    expect(names(first)).toEqual(['a']);
  });

  it('subscribe, update, unsubscribe, and removed_resources only for what the client had', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001] })));
    const c = connect('subs');
    c.send({ type_url: EDS, resource_names_subscribe: ['a', 'b'] });
    const first = await c.next();
    expect(names(first)).toEqual(['a']);
    expect(first.removed_resources).toEqual([]);
    c.ack(first);

    running.cache.setSnapshot(snapshotOf(eds({ a: [1002], b: [2001], other: [3001] })));
    const second = await c.next();
    expect(names(second)).toEqual(['a', 'b']);
    c.ack(second);

    c.send({ type_url: EDS, resource_names_unsubscribe: ['a'] });
    // 'a' changes after the unsubscribe, 'b' too: only 'b' comes.
    running.cache.setSnapshot(snapshotOf(eds({ a: [1003], b: [2002], other: [3001] })));
    const third = await c.next();
    expect(names(third)).toEqual(['b']);
    c.ack(third);

    // 'b' (held) and 'other' (never subscribed) are deleted: only 'b' is reported removed.
    running.cache.setSnapshot(snapshotOf(eds({ a: [1003] })));
    const fourth = await c.next();
    expect(fourth.resources).toEqual([]);
    expect(fourth.removed_resources).toEqual(['b']);
    c.ack(fourth);

    // Subscribing again to 'a' sends it again, though it did not change.
    c.send({ type_url: EDS, resource_names_subscribe: ['a'] });
    const fifth = await c.next();
    expect(names(fifth)).toEqual(['a']);
    expect(c.held.get(EDS)).toEqual(new Map([['a', fifth.resources[0]!.version]]));
  });

  it('honours initial_resource_versions on reconnect: only what differs is sent', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001], b: [2001], c: [3001] })));
    const first = connect('reconnect');
    first.send({ type_url: EDS, resource_names_subscribe: ['a', 'b', 'c'] });
    const all = await first.next();
    expect(names(all)).toEqual(['a', 'b', 'c']);
    const versions = Object.fromEntries(all.resources.map((r) => [r.name, r.version]));
    first.close();

    // While away: b changes, c is deleted.
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001], b: [2002] })));
    const again = connect('reconnect');
    again.send({ type_url: EDS, resource_names_subscribe: ['a', 'b', 'c'], initial_resource_versions: versions });
    const catchUp = await again.next();
    expect(names(catchUp)).toEqual(['b']);
    expect(catchUp.removed_resources).toEqual(['c']);
  });

  it('a reconnect holding every current version gets nothing and shows ACKED and up to date (a control-plane restart)', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001], b: [2001] })));
    const first = connect('resumed');
    first.send({ type_url: EDS, resource_names_subscribe: ['a', 'b'] });
    const all = await first.next();
    first.close();

    const again = connect('resumed');
    again.send({
      type_url: EDS,
      resource_names_subscribe: ['a', 'b'],
      initial_resource_versions: Object.fromEntries(all.resources.map((r) => [r.name, r.version])),
    });
    const resumed = await waitFor('the resumed EDS ACKED', () => {
      const status = running!.xds.nodes().find((n) => n.nodeId === 'resumed')?.types.eds;
      return status?.status === 'ACKED' ? status : undefined;
    });
    expect(resumed).toMatchObject({ upToDate: true, inFlight: false, ackedVersion: all.system_version_info });
    expect(again.pending).toBe(0);
  });

  it('wildcard CDS: everything, then additions and removals', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf({ clusters: [cluster('c1'), cluster('c2')] }));
    const c = connect('wildcard');
    c.send({ type_url: CDS });
    const first = await c.next();
    expect(names(first)).toEqual(['c1', 'c2']);
    c.ack(first);
    running.cache.setSnapshot(snapshotOf({ clusters: [cluster('c2'), cluster('c3')] }));
    const second = await c.next();
    expect(names(second)).toEqual(['c3']);
    expect(second.removed_resources).toEqual(['c1']);
  });

  it('a NACK is recorded and the rejected version is not resent', async () => {
    running = await startXds();
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001], b: [2001] })));
    const c = connect('nack');
    c.send({ type_url: EDS, resource_names_subscribe: ['a', 'b'] });
    const first = await c.next();
    c.send({ type_url: EDS, response_nonce: first.nonce, error_detail: { code: 3, message: 'endpoint a is bad' } });
    const status = await waitFor('the NACK recorded', () => running!.xds.nodes()[0]?.types.eds?.lastNack ?? undefined);
    expect(status.errorDetail).toBe('endpoint a is bad');
    expect(running.xds.nodes()[0]?.types.eds?.status).toBe('NACKED');

    // The next response carries only the next change, never the rejected resources again.
    running.cache.setSnapshot(snapshotOf(eds({ a: [1001], b: [2002] })));
    const next = await c.next();
    expect(names(next)).toEqual(['b']);
    c.ack(next);
    await waitFor('ACKED again', () => running!.xds.nodes()[0]?.types.eds?.status === 'ACKED');
  });

  it('orders additions CDS → EDS → LDS → RDS and sends removals after them', async () => {
    running = await startXds();
    const config = (clusterName: string): ConfigSpec => ({
      listeners: [listener('l', 'r')],
      routes: [route('r', clusterName)],
      clusters: [cluster(clusterName)],
      endpoints: [endpoints(clusterName, [1001])],
    });
    running.cache.setSnapshot(snapshotOf(config('blue')));
    const c = connect('order');
    c.send({ type_url: CDS });
    c.send({ type_url: EDS, resource_names_subscribe: ['blue', 'green'] });
    c.send({ type_url: LDS });
    c.send({ type_url: RDS, resource_names_subscribe: ['r'] });
    for (let i = 0; i < 4; i++) c.ack(await c.next());

    // Blue → green in one snapshot: green must be in place, and the route moved, before blue goes.
    running.cache.setSnapshot(snapshotOf(config('green')));
    const seen: string[] = [];
    while (seen.length < 5) {
      const r = await c.next();
      const kind = { [CDS]: 'cds', [EDS]: 'eds', [LDS]: 'lds', [RDS]: 'rds' }[r.type_url];
      seen.push(
        `${kind}${r.resources.length ? `+${names(r).join(',')}` : ''}${r.removed_resources.length ? `-${r.removed_resources.join(',')}` : ''}`,
      );
      c.ack(r);
    }
    expect(seen).toEqual(['cds+green', 'eds+green', 'rds+r', 'eds-blue', 'cds-blue']);
  });
});
