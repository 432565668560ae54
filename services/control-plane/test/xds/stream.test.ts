import { describe, expect, it } from 'vitest';
import { lookupType, TypeUrl, type XdsTypeUrl } from '@switchyard/shared';
import { XdsCache } from '../../src/xds/cache.js';
import { decodeDiscoveryRequest, type SotwRequest } from '../../src/xds/encoding.js';
import { XdsStream, type NackRecord, type OutgoingResponse } from '../../src/xds/stream.js';
import { cluster, endpoints, listener, route, snapshotOf, type ConfigSpec } from './helpers.js';

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
  version: string;
  nonce: string;
}

function harness(spec: ConfigSpec | undefined) {
  const cache = new XdsCache();
  if (spec !== undefined) cache.setSnapshot(snapshotOf(spec));
  const sent: (Sent & { raw: OutgoingResponse })[] = [];
  const nacks: NackRecord[] = [];
  const stream = new XdsStream(
    1,
    'sotw',
    cache,
    {
      send: (r) => {
        const decoded = DiscoveryResponse.toObject(DiscoveryResponse.decode(r.bytes)) as {
          resources?: { value: Uint8Array }[];
          version_info: string;
        };
        const names = (decoded.resources ?? []).map((any) => {
          const inner = lookupType(r.typeUrl).decode(any.value) as unknown as { name?: string; cluster_name?: string };
          return inner.name ?? inner.cluster_name ?? '';
        });
        sent.push({
          type: { [CDS]: 'cds', [EDS]: 'eds', [LDS]: 'lds', [RDS]: 'rds' }[r.typeUrl as string] ?? '?',
          names,
          version: r.version,
          nonce: r.nonce,
          raw: r,
        });
      },
      connected: () => undefined,
      acked: () => undefined,
      nacked: (_view, nack) => nacks.push(nack),
      unknownType: () => undefined,
      staleNonce: () => undefined,
      dirty: () => undefined,
    },
    undefined,
    0,
    () => 0,
  );
  let first = true;
  const send = (fields: Parameters<typeof request>[0]) => {
    stream.handleSotw(request({ ...fields, node: first }));
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
