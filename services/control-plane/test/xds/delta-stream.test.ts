import { describe, expect, it } from 'vitest';
import { lookupType, TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import { XdsCache } from '../../src/xds/cache.js';
import { deltaPolicy } from '../../src/xds/delta-policy.js';
import { decodeDeltaRequest, type DeltaRequest } from '../../src/xds/encoding.js';
import type { NackRecord } from '../../src/xds/stream.js';
import type { ProtoObject } from '../../src/resources.js';
import { bareStream, cluster, endpoints, listener, route, snapshotOf, type ConfigSpec } from './helpers.js';

/**
 * The delta state machine without gRPC: requests in (through the real decoder), responses out
 * (decoded down to each resource), tick() called by hand where the server's scheduler would.
 */

const DeltaDiscoveryRequest = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const DeltaDiscoveryResponse = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;
const SRDS = TypeUrl.ScopedRouteConfiguration;
const short: Record<string, string> = { [CDS]: 'cds', [EDS]: 'eds', [LDS]: 'lds', [RDS]: 'rds', [SRDS]: 'srds' };

interface Sent {
  type: string;
  /** Names from each Resource wrapper, checked against the name inside its decoded resource. */
  names: string[];
  versions: Record<string, string>;
  removed: string[];
  nonce: string;
}

function request(fields: {
  type: XdsTypeUrl;
  subscribe?: string[];
  unsubscribe?: string[];
  initial?: Record<string, string>;
  nonce?: string;
  error?: string;
  node?: boolean;
}): DeltaRequest {
  const bytes = DeltaDiscoveryRequest.encode(
    DeltaDiscoveryRequest.fromObject({
      type_url: fields.type,
      resource_names_subscribe: fields.subscribe ?? [],
      resource_names_unsubscribe: fields.unsubscribe ?? [],
      initial_resource_versions: fields.initial ?? {},
      response_nonce: fields.nonce ?? '',
      ...(fields.error ? { error_detail: { code: 3, message: fields.error } } : {}),
      ...(fields.node ? { node: { id: 'n1', cluster: 'c', user_agent_name: 'envoy' } } : {}),
    }),
  ).finish();
  const decoded = decodeDeltaRequest(Buffer.from(bytes));
  if ('malformed' in decoded) throw new Error(decoded.malformed);
  return decoded;
}

function decodeSent(bytes: Buffer): Sent {
  const r = DeltaDiscoveryResponse.toObject(DeltaDiscoveryResponse.decode(bytes)) as {
    type_url: string;
    nonce: string;
    resources?: { name: string; version: string; resource: { type_url: string; value: Uint8Array } }[];
    removed_resources?: string[];
  };
  const type = lookupType(r.type_url);
  const resources = r.resources ?? [];
  for (const res of resources) {
    const inner = type.toObject(type.decode(res.resource.value)) as { name?: string; cluster_name?: string };
    expect(inner.name ?? inner.cluster_name).toBe(res.name);
  }
  return {
    type: short[r.type_url] ?? '?',
    names: resources.map((x) => x.name).sort(),
    versions: Object.fromEntries(resources.map((x) => [x.name, x.version])),
    removed: r.removed_resources ?? [],
    nonce: r.nonce,
  };
}

function harness(spec: ConfigSpec | undefined) {
  const cache = new XdsCache();
  if (spec !== undefined) cache.setSnapshot(snapshotOf(spec));
  const sent: Sent[] = [];
  const nacks: NackRecord[] = [];
  const stream = bareStream(
    deltaPolicy,
    cache,
    (r) => sent.push(decodeSent(r.bytes)),
    (nack) => nacks.push(nack),
  );
  let first = true;
  const send = (fields: Parameters<typeof request>[0]) => {
    stream.handle(request({ ...fields, node: first }));
    first = false;
    stream.tick();
  };
  const setSnapshot = (next: ConfigSpec) => {
    cache.setSnapshot(snapshotOf(next));
    stream.tick();
  };
  const ack = (r: Sent) => send({ type: { cds: CDS, eds: EDS, lds: LDS, rds: RDS, srds: SRDS }[r.type as 'cds']!, nonce: r.nonce });
  const last = () => sent[sent.length - 1]!;
  return { cache, stream, sent, nacks, send, setSnapshot, ack, last };
}

const eds = (spec: Record<string, number[]>): ConfigSpec => ({
  endpoints: Object.entries(spec).map(([name, ports]) => endpoints(name, ports)),
});

const scope = (name: string, routeConfig: string): ProtoObject => ({
  name,
  route_configuration_name: routeConfig,
  key: { fragments: [{ string_key: name.split('/')[1] }, { string_key: name.split('/')[0] }] },
});

describe('delta stream, scoped RDS (every scope to a nameless subscription, as Envoy 1.40 subscribes)', () => {
  const spec = (scopes: ProtoObject[]): ConfigSpec => ({ scopes });

  it('answers a nameless SRDS request with every scope, then re-sends only the scope that changed and removes one that is gone', () => {
    const h = harness(spec([scope('http/a.test', 'a'), scope('http/b.test', 'b')]));
    h.send({ type: SRDS });
    expect(h.last()).toMatchObject({ type: 'srds', names: ['http/a.test', 'http/b.test'] });
    h.ack(h.last());
    h.setSnapshot(spec([scope('http/a.test', 'a'), scope('http/b.test', 'b2')]));
    expect(h.last()).toMatchObject({ type: 'srds', names: ['http/b.test'], removed: [] });
    h.ack(h.last());
    h.setSnapshot(spec([scope('http/b.test', 'b2')]));
    expect(h.last()).toMatchObject({ type: 'srds', names: [], removed: ['http/a.test'] });
  });
});

describe('delta stream', () => {
  it('holds requests until the cache is ready, then answers', () => {
    const h = harness(undefined);
    h.send({ type: EDS, subscribe: ['a'] });
    expect(h.stream.heldRequests).toBe(1);
    expect(h.sent).toEqual([]);
    h.cache.setSnapshot(snapshotOf(eds({ a: [1001] })));
    h.stream.resume();
    h.stream.tick();
    expect(h.sent.map((s) => s.names)).toEqual([['a']]);
    expect(h.stream.heldRequests).toBe(0);
  });

  it('subscribe, update, unsubscribe, and removed_resources only for what the client had', () => {
    const h = harness(eds({ a: [1001] }));
    h.send({ type: EDS, subscribe: ['a', 'b'] });
    expect(h.last()).toMatchObject({ names: ['a'], removed: [] });
    h.ack(h.last());

    h.setSnapshot(eds({ a: [1002], b: [2001], other: [3001] }));
    expect(h.last().names).toEqual(['a', 'b']);
    h.ack(h.last());

    // 'a' changes after the unsubscribe, 'b' too: only 'b' comes.
    h.send({ type: EDS, unsubscribe: ['a'] });
    h.setSnapshot(eds({ a: [1003], b: [2002], other: [3001] }));
    expect(h.last().names).toEqual(['b']);
    h.ack(h.last());

    // 'b' (held) and 'other' (never subscribed) are deleted: only 'b' is reported removed.
    h.setSnapshot(eds({ a: [1003] }));
    expect(h.last()).toMatchObject({ names: [], removed: ['b'] });
    h.ack(h.last());

    // Subscribing again to 'a' sends it again, though it did not change.
    h.send({ type: EDS, subscribe: ['a'] });
    expect(h.last().names).toEqual(['a']);
  });

  it('honours initial_resource_versions on reconnect: only what differs is sent', () => {
    const before = harness(eds({ a: [1001], b: [2001], c: [3001] }));
    before.send({ type: EDS, subscribe: ['a', 'b', 'c'] });
    const versions = before.last().versions;
    expect(Object.keys(versions).sort()).toEqual(['a', 'b', 'c']);

    // While away: b changes, c is deleted.
    const after = harness(eds({ a: [1001], b: [2002] }));
    after.send({ type: EDS, subscribe: ['a', 'b', 'c'], initial: versions });
    expect(after.sent).toHaveLength(1);
    expect(after.last()).toMatchObject({ names: ['b'], removed: ['c'] });
  });

  it('wildcard CDS: everything, then additions and removals', () => {
    const h = harness({ clusters: [cluster('c1'), cluster('c2')] });
    h.send({ type: CDS });
    expect(h.last().names).toEqual(['c1', 'c2']);
    h.ack(h.last());
    h.setSnapshot({ clusters: [cluster('c2'), cluster('c3')] });
    expect(h.last()).toMatchObject({ names: ['c3'], removed: ['c1'] });
  });

  it('a wildcard with nothing to send still answers, so the client ends its initial fetch', () => {
    const h = harness({});
    h.send({ type: CDS });
    expect(h.sent).toEqual([expect.objectContaining({ type: 'cds', names: [], removed: [] })]);
  });

  it('a NACK is recorded and the rejected version is not resent', () => {
    const h = harness(eds({ a: [1001], b: [2001] }));
    h.send({ type: EDS, subscribe: ['a', 'b'] });
    h.send({ type: EDS, nonce: h.last().nonce, error: 'endpoint a is bad' });
    expect(h.nacks.map((n) => n.errorDetail.message)).toEqual(['endpoint a is bad']);
    expect(h.stream.views.get(EDS)?.status).toBe('NACKED');
    expect(h.sent).toHaveLength(1);

    // The next response carries only the next change, never the rejected resources again.
    h.setSnapshot(eds({ a: [1001], b: [2002] }));
    expect(h.last().names).toEqual(['b']);
    h.ack(h.last());
    expect(h.stream.views.get(EDS)?.status).toBe('ACKED');
  });

  it('ignores the ACK of a stale nonce but applies its subscription change', () => {
    const h = harness(eds({ a: [1001], b: [2001] }));
    h.send({ type: EDS, subscribe: ['a'] });
    h.send({ type: EDS, nonce: 'not-ours', subscribe: ['b'] });
    expect(h.stream.views.get(EDS)?.status).toBe('REQUESTED');
    h.ack(h.sent[0]!);
    expect(h.last().names).toEqual(['b']);
  });

  it('orders additions CDS → EDS → LDS → RDS and sends removals only after all of them', () => {
    const config = (clusterName: string): ConfigSpec => ({
      listeners: [listener('l', 'r')],
      routes: [route('r', clusterName)],
      clusters: [cluster(clusterName)],
      endpoints: [endpoints(clusterName, [1001])],
    });
    const h = harness(config('blue'));
    h.send({ type: CDS });
    h.send({ type: EDS, subscribe: ['blue', 'green'] });
    h.send({ type: LDS });
    h.send({ type: RDS, subscribe: ['r'] });
    for (const r of [...h.sent]) h.ack(r);
    const seenFrom = h.sent.length;

    // Blue → green in one snapshot: green must be in place, and the route moved, before blue goes.
    h.setSnapshot(config('green'));
    for (let i = seenFrom; i < h.sent.length; i++) h.ack(h.sent[i]!);
    const seen = h.sent
      .slice(seenFrom)
      .map((r) => `${r.type}${r.names.length ? `+${r.names.join(',')}` : ''}${r.removed.length ? `-${r.removed.join(',')}` : ''}`);
    // Each removal waits for its own type's ACK, so which goes first depends on the ACKs.
    expect(seen.slice(0, 3)).toEqual(['cds+green', 'eds+green', 'rds+r']);
    expect(seen.slice(3).sort()).toEqual(['cds-blue', 'eds-blue']);
  });
});
