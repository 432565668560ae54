import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, grpcSecurityOf, type GrpcTlsConfig } from '../src/config.js';
import { grpcServerCredentials, sanIdentities } from '../src/grpc-tls.js';

describe('sanIdentities', () => {
  it.each([
    { label: 'a SPIFFE URI', san: 'URI:spiffe://switchyard/edge', want: ['spiffe://switchyard/edge'] },
    {
      label: 'DNS and URI, others ignored',
      san: 'DNS:edge.example, IP Address:10.0.0.1, URI:spiffe://x/y, email:a@b.c',
      want: ['edge.example', 'spiffe://x/y'],
    },
    { label: 'an IPv6 address (colons in the value)', san: 'IP Address:FE80:0:0:0:0:0:0:1, DNS:a.example', want: ['a.example'] },
    { label: 'a JSON-quoted value with a comma', san: 'URI:"spiffe://x/a,b", DNS:c.example', want: ['spiffe://x/a,b', 'c.example'] },
    { label: 'an entry inside a quoted value is no entry', san: 'email:"x, URI:spiffe://switchyard/edge"', want: [] },
    { label: 'nothing', san: undefined, want: [] },
    { label: 'unparsable text yields nothing', san: 'URI:spiffe://switchyard/edge, "broken', want: [] },
  ])('$label', ({ san, want }) => {
    expect(sanIdentities(san)).toEqual(want);
  });
});

describe('grpcSecurityOf', () => {
  const files = { XDS_TLS_CERT: '/c.pem', XDS_TLS_KEY: '/k.pem', XDS_TLS_CLIENT_CA: '/ca.pem' };
  const problems = (config: Partial<GrpcTlsConfig>) => {
    try {
      grpcSecurityOf(config);
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => p.split(':')[0]);
    }
  };

  it('serves mutual TLS from the three files', () => {
    expect(grpcSecurityOf({ ...files, XDS_INSECURE: false })).toEqual({
      mode: 'mtls',
      certFile: '/c.pem',
      keyFile: '/k.pem',
      clientCaFile: '/ca.pem',
    });
  });

  it('serves plaintext only when XDS_INSECURE=true says so', () => {
    expect(grpcSecurityOf({ XDS_INSECURE: true })).toEqual({ mode: 'plaintext' });
  });

  it.each([
    { label: 'nothing set', config: { XDS_INSECURE: false }, want: ['XDS_TLS_CERT', 'XDS_TLS_KEY', 'XDS_TLS_CLIENT_CA'] },
    { label: 'the CA missing', config: { XDS_TLS_CERT: '/c', XDS_TLS_KEY: '/k' }, want: ['XDS_TLS_CLIENT_CA'] },
    { label: 'insecure and a file at once', config: { XDS_INSECURE: true, XDS_TLS_CERT: '/c' }, want: ['XDS_INSECURE'] },
  ])('refuses $label, naming the variables', ({ config, want }) => {
    expect(problems(config)).toEqual(want);
  });
});

describe('grpcServerCredentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the variable of a file it cannot read', () => {
    expect(() =>
      grpcServerCredentials({
        mode: 'mtls',
        certFile: join(dir, 'none.crt'),
        keyFile: join(dir, 'none.key'),
        clientCaFile: join(dir, 'ca'),
      }),
    ).toThrow(/XDS_TLS_CERT: cannot read .*none\.crt \(ENOENT\)[^]*XDS_TLS_KEY[^]*XDS_TLS_CLIENT_CA/);
  });

  it('refuses files that are not PEM, before anything binds', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    expect(() => grpcServerCredentials({ mode: 'mtls', certFile: junk, keyFile: junk, clientCaFile: junk })).toThrow(
      /XDS_TLS_CERT, XDS_TLS_KEY: not a PEM certificate/,
    );
  });
});
