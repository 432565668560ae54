import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@switchyard/shared';
import { everyType, typesForIdentities, xdsAccess } from '../../src/xds/index.js';

const edge = new Set(['spiffe://switchyard/edge', 'edge.switchyard.internal']);
const peer = (subjectaltname: string | undefined) => ({
  getAuthContext: () =>
    subjectaltname === undefined ? {} : { transportSecurityType: 'ssl', sslPeerCertificate: { subjectaltname } as never },
});

describe('typesForIdentities', () => {
  it.each([
    { label: 'the edge URI', identities: ['spiffe://switchyard/edge'], secrets: true },
    { label: 'the edge DNS name among others', identities: ['x.example', 'edge.switchyard.internal'], secrets: true },
    { label: 'a tools identity', identities: ['spiffe://switchyard/tools'], secrets: false },
    { label: 'a look-alike', identities: ['spiffe://switchyard/edge/evil'], secrets: false },
    { label: 'no identity', identities: [], secrets: false },
  ])('$label: secrets $secrets', ({ identities, secrets }) => {
    const types = typesForIdentities(identities, edge);
    expect(types.has(TypeUrl.Secret)).toBe(secrets);
    for (const type of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]) {
      expect(types.has(type)).toBe(true);
    }
  });
});

describe('xdsAccess', () => {
  it('on a mutual-TLS port, reads the identity from the client certificate', () => {
    const typesFor = xdsAccess({ peersAuthenticated: true, edgeIdentities: [...edge] });
    expect(typesFor(peer('URI:spiffe://switchyard/edge')).has(TypeUrl.Secret)).toBe(true);
    expect(typesFor(peer('URI:spiffe://switchyard/tools')).has(TypeUrl.Secret)).toBe(false);
    expect(typesFor(peer(undefined)).has(TypeUrl.Secret)).toBe(false);
  });

  it('on a plaintext port (loopback or XDS_INSECURE) serves every type', () => {
    expect(xdsAccess({ peersAuthenticated: false, edgeIdentities: [] })(peer(undefined))).toBe(everyType);
  });
});
