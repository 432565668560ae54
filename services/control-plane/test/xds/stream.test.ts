import { describe, expect, it } from 'vitest';
import { lookupType, TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import { XdsCache } from '../../src/xds/cache.js';
import { decodeDiscoveryRequest, type SotwRequest } from '../../src/xds/encoding.js';
import type { NackRecord, OutgoingResponse } from '../../src/xds/stream.js';
import { sotwPolicy } from '../../src/xds/sotw-policy.js';
import { blame } from '../../src/xds/rejections.js';
import { encodeResource } from '../../src/xds/encoding.js';
import { bareStream, cluster, endpoints, listener, route, snapshotOf, type ConfigSpec } from './helpers.js';

/**
 * The SotW state machine without gRPC: requests in, responses out, tick() called by hand
 * where the server's scheduler would call it.
 */

const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const DiscoveryResponse = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

function request(fields: {
  type: XdsTypeUrl;
  names?: string[];
  nonce?: string;
  version?: string;
  error?: string;
  node?: boolean;
}): SotwRequest {
  const bytes = DiscoveryRequest.encode(
    DiscoveryRequest.fromObject({
      type_url: fields.type,
      resource_names: fields.names ?? [],
      response_nonce: fields.nonce ?? '',
      version_info: fields.version ?? '',
      ...(fields.error ? { error_detail: { code: 3, message: fields.error } } : {}),
      ...(fields.node ? { node: { id: 'n1', cluster: 'c', user_agent_name: 'envoy' } } : {}),
    }),
  ).finish();
  const decoded = decodeDiscoveryRequest(Buffer.from(bytes));
  if ('malformed' in decoded) throw new Error(decoded.malformed);
  return decoded;
}

interface Sent {
  type: string;
  names: string[];
  /** The resources as decoded from the wire (enums as names). */
  decoded: Record<string, unknown>[];
  version: string;
  nonce: string;
}

function harness(spec: ConfigSpec | undefined) {
  const cache = new XdsCache();
  if (spec !== undefined) cache.setSnapshot(snapshotOf(spec));
  const sent: (Sent & { raw: OutgoingResponse })[] = [];
  const nacks: NackRecord[] = [];
  const stream = bareStream(
    sotwPolicy,
    cache,
    (r) => {
      const decoded = DiscoveryResponse.toObject(DiscoveryResponse.decode(r.bytes)) as { resources?: { value: Uint8Array }[] };
      const type = lookupType(r.typeUrl);
      const resources = (decoded.resources ?? []).map(
        (any) => type.toObject(type.decode(any.value), { enums: String }) as Record<string, unknown>,
      );
      const names = resources.map((x) => (x.name ?? x.cluster_name ?? '') as string);
      const short = { [CDS]: 'cds', [EDS]: 'eds', [LDS]: 'lds', [RDS]: 'rds' }[r.typeUrl as string] ?? '?';
      sent.push({ type: short, names, decoded: resources, version: r.version, nonce: r.nonce, raw: r });
    },
    (nack) => nacks.push(nack),
  );
  let first = true;
  const send = (fields: Parameters<typeof request>[0]) => {
    stream.handle(request({ ...fields, node: first }));
    first = false;
  };
  const last = (type: string) => [...sent].reverse().find((s) => s.type === type)!;
  /** ACKs the latest response of each type, as a well-behaved client does. */
  const ackAll = (names: Partial<Record<string, string[]>> = {}) => {
    const types = { cds: CDS, eds: EDS, lds: LDS, rds: RDS } as const;
    for (const [short, type] of Object.entries(types)) {
      const l = last(short);
      if (l) send({ type, nonce: l.nonce, version: l.version, names: names[short] });
    }
  };
  return { cache, stream, sent, nacks, send, last, ackAll, tick: () => stream.tick() };
}

const twoClusters: ConfigSpec = {
  clusters: [cluster('a'), cluster('b')],
  endpoints: [endpoints('a', [1001]), endpoints('b', [2001])],
};

describe('State-of-the-World stream', () => {
  it('sends CDS as the full set and EDS as only what changed', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS });
    h.send({ type: EDS, names: ['a', 'b'] });
    h.tick();
    expect(h.sent.map((s) => [s.type, s.names])).toEqual([
      ['cds', ['a', 'b']],
      ['eds', ['a', 'b']],
    ]);
    h.ackAll({ eds: ['a', 'b'] });
    h.cache.setSnapshot(
      snapshotOf({
        clusters: [cluster('a'), cluster('b', { connect_timeout: { seconds: 2 } })],
        endpoints: [endpoints('a', [1002]), endpoints('b', [2001])],
      }),
    );
    h.tick();
    expect(h.sent.slice(2).map((s) => [s.type, s.names])).toEqual([
      ['cds', ['a', 'b']],
      ['eds', ['a']],
    ]);
  });

  it('answers an EDS request that names only some clusters (warming), and later ones when asked', () => {
    const h = harness(twoClusters);
    h.send({ type: EDS, names: ['a'] });
    h.tick();
    expect(h.last('eds').names).toEqual(['a']);
    h.ackAll({ eds: ['a', 'b'] });
    h.tick();
    expect(h.last('eds').names).toEqual(['b']);
  });

  it('coalesces changes made between ticks into one response', () => {
    const h = harness(twoClusters);
    h.send({ type: EDS, names: ['a', 'b'] });
    h.tick();
    h.ackAll({ eds: ['a', 'b'] });
    h.cache.setSnapshot(snapshotOf({ ...twoClusters, endpoints: [endpoints('a', [1002]), endpoints('b', [2001])] }));
    h.cache.setSnapshot(snapshotOf({ ...twoClusters, endpoints: [endpoints('a', [1003]), endpoints('b', [2002])] }));
    h.tick();
    expect(h.sent.slice(1).map((s) => [s.type, s.names])).toEqual([['eds', ['a', 'b']]]);
  });

  it('keeps one response per type in flight: changes wait for the ACK, then go out merged', () => {
    const h = harness(twoClusters);
    h.send({ type: EDS, names: ['a', 'b'] });
    h.tick();
    h.cache.setSnapshot(snapshotOf({ ...twoClusters, endpoints: [endpoints('a', [1002]), endpoints('b', [2001])] }));
    h.tick();
    expect(h.sent).toHaveLength(1);
    h.ackAll({ eds: ['a', 'b'] });
    h.tick();
    expect(h.sent.slice(1).map((s) => s.names)).toEqual([['a']]);
  });

  it('never resends a NACKed version, and recognises a NACK by error_detail even when the version advanced', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS });
    h.tick();
    const first = h.last('cds');
    h.send({ type: CDS, nonce: first.nonce, version: first.version });
    h.cache.setSnapshot(snapshotOf({ ...twoClusters, clusters: [cluster('a', { lb_policy: 'MAGLEV' }), cluster('b')] }));
    h.tick();
    const bad = h.last('cds');
    // grpc-js-xds style partial NACK: version_info is the new version, error_detail says why.
    h.send({ type: CDS, nonce: bad.nonce, version: bad.version, error: 'resource index 0: unsupported lb_policy' });
    h.tick();
    h.tick();
    expect(h.sent).toHaveLength(2);
    expect(h.nacks).toEqual([
      expect.objectContaining({ version: bad.version, errorDetail: { code: 3, message: 'resource index 0: unsupported lb_policy' } }),
    ]);
    expect(h.stream.views.get(CDS)?.status).toBe('NACKED');
    expect(h.stream.views.get(CDS)?.ackedVersion).toBe(first.version);
    // A new desired state goes out once.
    h.cache.setSnapshot(snapshotOf(twoClusters));
    h.tick();
    expect(h.sent).toHaveLength(3);
  });

  it('keeps sending what the client kept for a rejected cluster, so unrelated changes are not NACKed again', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS });
    h.tick();
    const good = h.last('cds');
    h.send({ type: CDS, nonce: good.nonce, version: good.version });
    const aVersion = (spec: ConfigSpec) => {
      const c = new XdsCache();
      c.setSnapshot(snapshotOf(spec));
      return c.typeState('envoy', CDS).resources.get('a')!.version;
    };
    const badA = { ...twoClusters, clusters: [cluster('a', { lb_policy: 'MAGLEV' }), cluster('b')] };
    h.cache.setSnapshot(snapshotOf(badA));
    h.tick();
    const bad = h.last('cds');
    h.send({ type: CDS, nonce: bad.nonce, version: bad.version, error: 'resource index 0: unsupported lb_policy' });
    expect(h.stream.views.get(CDS)?.rejected).toEqual(new Map([['a', expect.objectContaining({ version: aVersion(badA) })]]));

    // b changes: the set carries a at the version the client kept.
    const bChanged = {
      ...twoClusters,
      clusters: [cluster('a', { lb_policy: 'MAGLEV' }), cluster('b', { connect_timeout: { seconds: 3 } })],
    };
    h.cache.setSnapshot(snapshotOf(bChanged));
    h.tick();
    const next = h.last('cds');
    const lbPolicy = (sent: Sent, name: string) => sent.decoded.find((x) => x.name === name)?.lb_policy;
    expect(next.names).toEqual(['a', 'b']);
    expect(lbPolicy(next, 'a')).toBe('ROUND_ROBIN');
    expect(next.decoded.find((x) => x.name === 'b')?.connect_timeout).toEqual(expect.objectContaining({ seconds: expect.anything() }));
    h.send({ type: CDS, nonce: next.nonce, version: next.version });
    expect(h.stream.views.get(CDS)?.status).toBe('ACKED');

    // a is fixed: the new version goes out and the rejection is forgotten.
    h.cache.setSnapshot(snapshotOf({ ...bChanged, clusters: [cluster('a', { lb_policy: 'LEAST_REQUEST' }), bChanged.clusters![1]!] }));
    h.tick();
    expect(lbPolicy(h.last('cds'), 'a')).toBe('LEAST_REQUEST');
    expect(h.stream.views.get(CDS)?.rejected.size).toBe(0);
  });

  it('ignores requests with a stale nonce', () => {
    const h = harness(twoClusters);
    h.send({ type: EDS, names: ['a'] });
    h.tick();
    h.send({ type: EDS, names: ['a', 'b'], nonce: 'not-the-latest' });
    h.tick();
    expect(h.sent).toHaveLength(1);
    expect(h.stream.views.get(EDS)?.subscription?.names).toEqual(new Set(['a']));
  });

  it('sends nothing to a reconnecting client that already holds the current versions', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS });
    h.send({ type: EDS, names: ['a', 'b'] });
    h.tick();
    const [cds, eds] = [h.last('cds'), h.last('eds')];

    const again = harness(twoClusters);
    again.send({ type: CDS, version: cds.version });
    again.send({ type: EDS, names: ['a', 'b'], version: eds.version });
    again.tick();
    expect(again.sent).toEqual([]);
    expect(again.stream.inSync(2)).toBe(true);

    const stale = harness({ ...twoClusters, endpoints: [endpoints('a', [1009]), endpoints('b', [2001])] });
    stale.send({ type: CDS, version: cds.version });
    stale.send({ type: EDS, names: ['a', 'b'], version: eds.version });
    stale.tick();
    expect(stale.sent.map((s) => [s.type, s.names])).toEqual([['eds', ['a', 'b']]]);
  });

  it('holds requests made before the cache is ready and checks their versions once it is', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS });
    h.tick();
    const held = harness(undefined);
    held.send({ type: CDS, version: h.last('cds').version });
    held.send({ type: EDS, names: ['a'] });
    held.tick();
    expect(held.sent).toEqual([]);
    expect(held.stream.heldRequests).toBe(2);
    held.cache.setSnapshot(snapshotOf(twoClusters));
    held.stream.resume();
    held.tick();
    // CDS: the client already holds this version; EDS: it held nothing.
    expect(held.sent.map((s) => [s.type, s.names])).toEqual([['eds', ['a']]]);
    expect(held.stream.heldRequests).toBe(0);
  });

  it('sends CDS again when the subscription changes, with exactly the subscribed clusters', () => {
    const h = harness(twoClusters);
    h.send({ type: CDS, names: ['a'] });
    h.tick();
    expect(h.last('cds').names).toEqual(['a']);
    h.send({ type: CDS, names: ['a', 'b', 'missing'], nonce: h.last('cds').nonce, version: h.last('cds').version });
    h.tick();
    expect(h.last('cds').names).toEqual(['a', 'b']);
    expect(h.stream.views.get(CDS)?.subscription?.missing()).toEqual(['missing']);
  });

  it('moves a route to a new cluster before the old cluster is removed', () => {
    const config = (name: string): ConfigSpec => ({
      listeners: [listener('l', 'r')],
      routes: [route('r', name)],
      clusters: [cluster(name)],
      endpoints: [endpoints(name, [1001])],
    });
    const h = harness(config('blue'));
    h.send({ type: CDS });
    h.send({ type: EDS, names: ['blue'] });
    h.send({ type: LDS });
    h.send({ type: RDS, names: ['r'] });
    h.tick();
    h.ackAll({ eds: ['blue'], rds: ['r'] });
    const before = h.sent.length;

    h.cache.setSnapshot(snapshotOf(config('green')));
    h.tick();
    // CDS keeps blue alongside green until the route has moved.
    expect(h.sent.slice(before).map((s) => [s.type, s.names])).toEqual([
      ['cds', ['green', 'blue']],
      ['rds', ['r']],
    ]);
    h.ackAll({ eds: ['green'], rds: ['r'] });
    h.tick();
    expect(h.sent.slice(before + 2).map((s) => [s.type, s.names])).toEqual([
      ['eds', ['green']],
      ['cds', ['green']],
    ]);
  });
});

describe('blaming a NACK', () => {
  const a = encodeResource(CDS, 'sy-acme-api-blue', cluster('sy-acme-api-blue'));
  const b = encodeResource(CDS, 'sy-acme-api-green', cluster('sy-acme-api-green'));
  const c = encodeResource(CDS, 'other', cluster('other'));
  const inflight = { sent: [c, a, b], pending: { upserts: [a, b], replaced: [null, null], removals: [] } };
  const cases: [string, string, string[]][] = [
    ['Envoy names the cluster', 'Error adding/updating cluster(s) sy-acme-api-green: bad lb', ['sy-acme-api-green']],
    [
      'grpc-js-xds points at the index sent',
      'xDS response validation errors: [resource index 1: unsupported lb_policy]',
      ['sy-acme-api-blue'],
    ],
    ['a name inside a longer name is not a mention', 'Error adding/updating cluster(s) sy-acme-api-blue-2: x', []],
    ['nothing recognisable and two changes: nobody', 'something failed', []],
    ['an unchanged cluster named: nobody', 'cluster other is bad', []],
  ];
  for (const [label, message, want] of cases) {
    it(label, () => expect(blame(inflight, message).map((x) => x.resource.name)).toEqual(want));
  }
  it('the only change is blamed when the message says nothing usable', () => {
    expect(blame({ sent: [a], pending: { upserts: [a], replaced: [null], removals: [] } }, 'rejected').map((x) => x.resource.name)).toEqual(
      [a.name],
    );
  });
});
