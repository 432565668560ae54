import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { certificateProblems, certificateSummary } from '../../src/validation/certificates.js';

const pem = (name: string) => readFileSync(new URL(`./certs/${name}`, import.meta.url), 'utf8');
const pair = (name: string) => ({ chain: pem(`${name}.crt`), key: pem(`${name}.key`) });
const now = Date.parse('2026-06-01T00:00:00Z');

describe('certificateProblems', () => {
  it.each([
    { label: 'RSA 2048', chain: pair('rsa-2048').chain, key: pair('rsa-2048').key, want: [] },
    { label: 'EC P-384', chain: pair('ec-p384').chain, key: pair('ec-p384').key, want: [] },
    {
      label: 'RSA 1024',
      chain: pair('rsa-1024').chain,
      key: pair('rsa-1024').key,
      want: [{ field: 'tls.privateKey', message: 'is a 1024-bit RSA key; Envoy needs at least 2048 bits' }],
    },
    {
      label: 'EC secp256k1',
      chain: pair('ec-secp256k1').chain,
      key: pair('ec-secp256k1').key,
      want: [{ field: 'tls.privateKey', message: 'is an EC key on secp256k1; Envoy serves only P-256, P-384 and P-521' }],
    },
    {
      label: 'expired',
      chain: pair('expired').chain,
      key: pair('expired').key,
      want: [{ field: 'tls.certificateChain', message: 'expired on 2025-12-02T00:00:00.000Z' }],
    },
    {
      label: "another certificate's key",
      chain: pair('rsa-2048').chain,
      key: pair('ec-p384').key,
      want: [{ field: 'tls.privateKey', message: 'does not belong to the first certificate of certificateChain' }],
    },
  ])('$label', ({ chain, key, want }) => {
    expect(certificateProblems(chain, key, now)).toEqual(want);
  });

  it('checks validity only when given the time: the translator keeps a stored certificate that has since expired', () => {
    const { chain, key } = pair('expired');
    expect(certificateProblems(chain, key)).toEqual([]);
  });
});

describe('certificateSummary', () => {
  it('describes the first certificate without anything secret', () => {
    const summary = certificateSummary(pair('rsa-2048').chain);
    expect(summary).toEqual({
      subject: 'CN=secure.trust.test',
      subjectAltNames: ['DNS:secure.trust.test', 'DNS:www.secure.trust.test'],
      notBefore: '2025-12-31T00:00:00.000Z',
      notAfter: expect.stringMatching(/^2125-/),
      fingerprintSha256: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
    });
    expect(certificateSummary('not a certificate')).toBeUndefined();
  });
});
