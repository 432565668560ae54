import { describe, expect, it } from 'vitest';
import { lookupType, TypeUrl } from '@switchyard/shared';
import {
  decodeDeltaRequest,
  decodeDiscoveryRequest,
  decodeNames,
  encodeDeltaResponse,
  encodeDiscoveryResponse,
  encodeResource,
  forgetNameSpan,
  rememberNameSpan,
  type DeltaRequest,
  type SotwRequest,
} from '../../src/xds/encoding.js';
import { cluster, endpoints } from './helpers.js';

const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const DiscoveryResponse = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const DeltaDiscoveryResponse = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const DeltaDiscoveryRequest = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');

function decode(fields: Record<string, unknown>): SotwRequest {
  const decoded = decodeDiscoveryRequest(Buffer.from(DiscoveryRequest.encode(DiscoveryRequest.fromObject(fields)).finish()));
  if ('malformed' in decoded) throw new Error(decoded.malformed);
  return decoded;
}

function decodeDelta(fields: Record<string, unknown>): DeltaRequest {
  const decoded = decodeDeltaRequest(Buffer.from(DeltaDiscoveryRequest.encode(DeltaDiscoveryRequest.fromObject(fields)).finish()));
  if ('malformed' in decoded) throw new Error(decoded.malformed);
  return decoded;
}

describe('wire encoding', () => {
  it('assembles a DiscoveryResponse that protobuf decodes to the same resources', () => {
    const a = encodeResource(TypeUrl.Cluster, 'a', cluster('a'));
    const bytes = encodeDiscoveryResponse({ versionInfo: 'v1', typeUrl: TypeUrl.Cluster, nonce: 'n1', resources: [a] });
    const decoded = DiscoveryResponse.toObject(DiscoveryResponse.decode(bytes)) as {
      version_info: string;
      nonce: string;
      type_url: string;
      resources: { type_url: string; value: Uint8Array }[];
    };
    expect(decoded).toMatchObject({ version_info: 'v1', nonce: 'n1', type_url: TypeUrl.Cluster });
    expect(decoded.resources[0]!.type_url).toBe(TypeUrl.Cluster);
    expect(lookupType(TypeUrl.Cluster).toObject(lookupType(TypeUrl.Cluster).decode(decoded.resources[0]!.value))).toMatchObject({
      name: 'a',
    });
  });

  it('assembles a DeltaDiscoveryResponse with versions and removals', () => {
    const a = encodeResource(TypeUrl.ClusterLoadAssignment, 'a', endpoints('a', [1001]));
    const bytes = encodeDeltaResponse({
      systemVersionInfo: 's',
      typeUrl: TypeUrl.ClusterLoadAssignment,
      nonce: 'n',
      resources: [a],
      removed: ['b'],
    });
    const decoded = DeltaDiscoveryResponse.toObject(DeltaDiscoveryResponse.decode(bytes)) as {
      resources: { name: string; version: string; resource: { type_url: string; value: Uint8Array } }[];
      removed_resources: string[];
    };
    expect(decoded.resources).toEqual([expect.objectContaining({ name: 'a', version: a.version })]);
    expect(decoded.removed_resources).toEqual(['b']);
    // The Any holds the ClusterLoadAssignment itself, not another Any around it.
    const resource = decoded.resources[0]!.resource;
    expect(resource.type_url).toBe(TypeUrl.ClusterLoadAssignment);
    const ClusterLoadAssignment = lookupType(TypeUrl.ClusterLoadAssignment);
    expect(ClusterLoadAssignment.toObject(ClusterLoadAssignment.decode(resource.value))).toMatchObject({ cluster_name: 'a' });
  });

  it('reads a request lazily: names stay raw bytes until asked for', () => {
    const req = decode({
      version_info: 'v',
      type_url: TypeUrl.Cluster,
      response_nonce: 'n',
      resource_names: ['x', 'y'],
      error_detail: { code: 3, message: 'bad' },
    });
    expect(req).toMatchObject({
      versionInfo: 'v',
      typeUrl: TypeUrl.Cluster,
      nonce: 'n',
      nameCount: 2,
      errorDetail: { code: 3, message: 'bad' },
    });
    expect(decodeNames(req.names)).toEqual(['x', 'y']);
  });

  it('recognises a known subscription whole, but not as the prefix of a longer one', () => {
    const names = Array.from({ length: 200 }, (_, i) => `cluster-${i}`);
    const known = decode({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: names });
    const raw = Buffer.from(known.names);
    rememberNameSpan(raw, names.length, 'raw:test');
    try {
      const again = decode({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: 'n2', resource_names: names });
      expect(again).toMatchObject({ namesKey: 'raw:test', nameCount: 200, nonce: 'n2' });
      expect(again.knownNames).toBe(raw);
      const longer = decode({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [...names, 'one-more'] });
      expect(longer.namesKey).toBeUndefined();
      expect(longer.nameCount).toBe(201);
      expect(decodeNames(longer.names)).toHaveLength(201);
    } finally {
      forgetNameSpan(raw);
    }
  });

  it('reads a delta request with its subscribe list as raw bytes, recognised whole when known', () => {
    const names = Array.from({ length: 200 }, (_, i) => `cluster-${i}`);
    const req = decodeDelta({
      type_url: TypeUrl.ClusterLoadAssignment,
      node: { id: 'n1', user_agent_name: 'envoy' },
      resource_names_subscribe: names,
      resource_names_unsubscribe: ['gone'],
      initial_resource_versions: { a: 'v1', ['__proto__']: 'v2' },
      response_nonce: 'n',
      error_detail: { code: 3, message: 'bad' },
    });
    expect(req).toMatchObject({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribeCount: 200, unsubscribe: ['gone'], nonce: 'n' });
    expect(req.node?.id).toBe('n1');
    expect(req.errorDetail).toEqual({ code: 3, message: 'bad' });
    expect({ ...req.initialVersions }).toEqual({ a: 'v1', ['__proto__']: 'v2' });
    expect(req.subscribeKey).toBeUndefined();
    expect(decodeNames(req.subscribeNames)).toEqual(names);
    const raw = Buffer.from(req.subscribeNames);
    rememberNameSpan(raw, names.length, 'raw:test');
    try {
      const again = decodeDelta({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: names });
      expect(again).toMatchObject({ subscribeKey: 'raw:test', subscribeCount: 200 });
      expect(
        decodeDelta({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [...names, 'x'] }).subscribeKey,
      ).toBeUndefined();
    } finally {
      forgetNameSpan(raw);
    }
  });

  it('reports malformed bytes instead of throwing', () => {
    expect(decodeDiscoveryRequest(Buffer.from([0x0a, 0xff, 0xff]))).toHaveProperty('malformed');
    expect(decodeDeltaRequest(Buffer.from([0x0a, 0xff, 0xff]))).toHaveProperty('malformed');
  });
});
