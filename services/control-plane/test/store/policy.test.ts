import { describe, expect, it } from 'vitest';
import { ConfigError, serviceSpec, type ServiceSpecInput } from '@switchyard/shared';
import { EndpointAllowlist, checkService, checkTenantGrant, imageAllowed } from '../../src/store/policy.js';

describe('checkTenantGrant', () => {
  const otherTenants = [
    { name: 'globex', domains: ['globex.test'] },
    { name: 'acme', domains: ['acme.test'] },
  ];
  it.each([
    { domains: ['com'], field: 'domains[0]', message: 'is a public suffix: grant a domain registered under it' },
    { domains: ['acme.example', 'co.uk'], field: 'domains[1]', message: 'is a public suffix: grant a domain registered under it' },
    { domains: ['github.io'], field: 'domains[0]', message: 'is a public suffix: grant a domain registered under it' },
    { domains: ['test'], field: 'domains[0]', message: 'is a public suffix: grant a domain registered under it' },
    { domains: ['localhost'], field: 'domains[0]', message: 'is localhost, which always means the proxy itself' },
    { domains: ['api.localhost'], field: 'domains[0]', message: 'is localhost, which always means the proxy itself' },
    { domains: ['10.0.0.1'], field: 'domains[0]', message: 'is an IP address, not a domain' },
    { domains: ['acme.example', 'acme.example'], field: 'domains[1]', message: 'is granted twice (domains[0])' },
  ])('refuses to grant $domains with 400 at $field', ({ domains, field, message }) => {
    expect(checkTenantGrant({ tenant: 'initech', domains, otherTenants: [], services: [] })).toEqual({
      ok: false,
      status: 400,
      issues: [{ field, message }],
    });
  });
  it('accepts a grant that overlaps no other tenant, even one equal to its own previous grant', () => {
    expect(checkTenantGrant({ tenant: 'acme', domains: ['acme.test', 'acme.example'], otherTenants, services: [] })).toEqual({ ok: true });
  });
  it.each([
    { domains: ['globex.test'], field: 'domains[0]' },
    { domains: ['acme.example', 'api.globex.test'], field: 'domains[1]' },
  ])('refuses $domains with 409 at $field', ({ domains, field }) => {
    const result = checkTenantGrant({ tenant: 'initech', domains, otherTenants, services: [] });
    expect(result).toMatchObject({ ok: false, status: 409 });
    if (result.ok) return;
    for (const issue of result.issues) {
      expect(issue.field).toBe(field);
      expect(issue.message).toMatch(/granted to tenant "(globex|acme)"/);
    }
  });
  it('refuses to shrink a grant under a domain a service uses', () => {
    const result = checkTenantGrant({
      tenant: 'acme',
      domains: ['shop.acme.test'],
      otherTenants,
      services: [{ name: 'api', domains: ['api.acme.test'] }],
    });
    expect(result).toMatchObject({ ok: false, status: 409, issues: [{ field: 'domains', message: expect.stringContaining('"api"') }] });
  });
});

describe('EndpointAllowlist', () => {
  const cases: { cidrs: string; address: string; allowed: boolean; reason?: RegExp }[] = [
    { cidrs: '', address: '10.0.0.1', allowed: false, reason: /SWITCHYARD_ENDPOINT_CIDRS is empty/ },
    { cidrs: '10.0.0.0/8', address: '10.1.2.3', allowed: true },
    { cidrs: '10.0.0.0/8', address: '11.0.0.1', allowed: false, reason: /outside the networks/ },
    { cidrs: '10.0.0.0/8, fd00::/8', address: 'fd12::1', allowed: true },
    { cidrs: '10.0.0.0/8', address: 'fd12::1', allowed: false },
    { cidrs: '192.168.1.10', address: '192.168.1.10', allowed: true },
    { cidrs: '192.168.1.10', address: '192.168.1.11', allowed: false },
    // Protected ranges need an explicit allowance inside them; a catch-all does not count.
    { cidrs: '0.0.0.0/0', address: '127.0.0.1', allowed: false, reason: /loopback/ },
    { cidrs: '0.0.0.0/0', address: '8.8.8.8', allowed: true },
    { cidrs: '127.0.0.0/8', address: '127.0.0.1', allowed: true },
    { cidrs: '127.0.0.1/32', address: '127.0.0.2', allowed: false, reason: /loopback/ },
    { cidrs: '::/0', address: '::1', allowed: false, reason: /loopback/ },
    { cidrs: '::1/128', address: '::1', allowed: true },
    { cidrs: '0.0.0.0/0', address: '0.0.0.0', allowed: false, reason: /unspecified/ },
    { cidrs: '::/0', address: '::', allowed: false, reason: /unspecified/ },
    { cidrs: '0.0.0.0/0', address: '169.254.169.254', allowed: false, reason: /link-local/ },
    { cidrs: '169.254.169.254/32', address: '169.254.169.254', allowed: true },
    { cidrs: '::/0', address: 'fe80::1', allowed: false, reason: /link-local/ },
    { cidrs: 'fd00::/8', address: 'fd00:ec2::254', allowed: false, reason: /metadata/ },
    { cidrs: 'fd00::/8', address: 'fd00:ec2::253', allowed: true },
    { cidrs: 'fd00:ec2::254/128', address: 'fd00:ec2::254', allowed: true },
    // IPv4-mapped IPv6 must not smuggle a protected IPv4 address past the check.
    { cidrs: '::/0', address: '::ffff:127.0.0.1', allowed: false, reason: /loopback/ },
    { cidrs: '::/0, 0.0.0.0/0', address: '::ffff:7f00:1', allowed: false, reason: /loopback/ },
    { cidrs: '::/0, 0.0.0.0/0', address: '::ffff:a9fe:a9fe', allowed: false, reason: /link-local/ },
    { cidrs: '10.0.0.0/8', address: '::ffff:10.0.0.1', allowed: true },
    { cidrs: '10.0.0.0/8', address: 'not-an-ip', allowed: false, reason: /not an IP address/ },
  ];
  it.each(cases)('[$cidrs] $address allowed: $allowed', ({ cidrs, address, allowed, reason }) => {
    const refusal = EndpointAllowlist.parse(cidrs).refusal(address);
    if (allowed) expect(refusal).toBeUndefined();
    else expect(refusal).toMatch(reason ?? /./);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x'])(
    'rejects the bad CIDR %s as a ConfigError',
    (bad) => {
      expect(() => EndpointAllowlist.parse(`127.0.0.0/8,${bad}`)).toThrow(ConfigError);
      expect(() => EndpointAllowlist.parse(`127.0.0.0/8,${bad}`)).toThrow(bad);
    },
  );
});

describe('checkService', () => {
  const allowlist = EndpointAllowlist.parse('127.0.0.0/8,10.0.0.0/8');
  const base: ServiceSpecInput = {
    domains: ['echo.acme.test'],
    revisions: [{ name: 'blue', endpoints: [{ address: '10.0.0.1', port: 8080 }] }],
  };
  const check = (input: Partial<ServiceSpecInput>, siblings: { name: string; domains: string[] }[] = []) =>
    checkService({
      tenant: 'acme',
      service: 'echo',
      spec: serviceSpec.parse({ ...base, ...input }),
      grants: ['acme.test'],
      siblings,
      allowlist,
      imageRegistries: ['registry.acme.test/', 'ghcr.io/acme'],
      now: Date.now(),
    });

  const cases: {
    label: string;
    input: Partial<ServiceSpecInput>;
    siblings?: { name: string; domains: string[] }[];
    status?: number;
    field?: string;
  }[] = [
    { label: 'a granted exact domain', input: {} },
    { label: 'a granted wildcard', input: { domains: ['*.acme.test'] } },
    { label: 'an ungranted domain', input: { domains: ['echo.acme.test', 'echo.globex.test'] }, status: 403, field: 'domains[1]' },
    { label: 'a wildcard wider than the grant', input: { domains: ['*.test'] }, status: 403, field: 'domains[0]' },
    {
      label: 'a refused endpoint address',
      input: {
        revisions: [
          {
            name: 'blue',
            endpoints: [
              { address: '10.0.0.1', port: 1 },
              { address: '169.254.169.254', port: 80 },
            ],
          },
        ],
      },
      status: 403,
      field: 'revisions[0].endpoints[1].address',
    },
    { label: 'an image from an allowed registry', input: { revisions: [{ name: 'blue', image: 'ghcr.io/acme/web:1' }] } },
    {
      label: 'an image from a registry not allowed',
      input: {
        revisions: [
          { name: 'blue', image: 'registry.acme.test/web:1' },
          { name: 'green', image: 'docker.io/library/nginx' },
        ],
        traffic: [{ revision: 'blue', percent: 100 }],
      },
      status: 400,
      field: 'revisions[1].image',
    },
    {
      label: 'a per-try timeout longer than the request timeout',
      input: { timeouts: { request: '5s' }, retries: { perTryTimeout: '10s' } },
      status: 400,
      field: 'retries.perTryTimeout',
    },
    {
      label: 'a route timeout below the per-try timeout',
      input: { routes: [{ match: { prefix: '/' }, timeout: '1s' }], retries: { perTryTimeout: '2s' } },
      status: 400,
      field: 'routes[0].timeout',
    },
    {
      label: 'no retries makes the per-try timeout moot',
      input: { timeouts: { request: '1s' }, retries: { attempts: 0, perTryTimeout: '10s' } },
    },
    {
      label: 'the same host as a sibling',
      input: {},
      siblings: [{ name: 'other', domains: ['echo.acme.test'] }],
      status: 409,
      field: 'domains[0]',
    },
    {
      label: 'a host under a sibling wildcard',
      input: {},
      siblings: [{ name: 'other', domains: ['*.acme.test'] }],
      status: 409,
      field: 'domains[0]',
    },
    {
      label: 'a wildcard over a sibling host',
      input: { domains: ['api.acme.test', '*.acme.test'] },
      siblings: [{ name: 'other', domains: ['shop.acme.test'] }],
      status: 409,
      field: 'domains[1]',
    },
    { label: 'its own previous hosts', input: {}, siblings: [{ name: 'echo', domains: ['echo.acme.test'] }] },
    { label: 'disjoint sibling hosts', input: {}, siblings: [{ name: 'other', domains: ['web.acme.test', '*.web.acme.test'] }] },
  ];
  it.each(cases)('$label', ({ input, siblings, status, field }) => {
    const result = check(input, siblings);
    if (status === undefined) expect(result).toEqual({ ok: true });
    else expect(result).toMatchObject({ ok: false, status, issues: [{ field }] });
  });

  it('blames the schema-free limits before the grant', () => {
    const result = check({ domains: ['echo.globex.test'], timeouts: { request: '1s' }, retries: { perTryTimeout: '2s' } });
    expect(result).toMatchObject({ status: 400 });
  });
});

describe('imageAllowed', () => {
  it.each([
    { image: 'ghcr.io/acme/web:1', registries: ['ghcr.io/acme'], allowed: true },
    { image: 'ghcr.io/acme:1', registries: ['ghcr.io/acme'], allowed: true },
    { image: 'ghcr.io/acme@sha256:00', registries: ['ghcr.io/acme'], allowed: true },
    { image: 'ghcr.io/acme-evil/web', registries: ['ghcr.io/acme'], allowed: false },
    { image: 'registry.acme.test.evil.io/web', registries: ['registry.acme.test'], allowed: false },
    { image: 'registry.acme.test/web', registries: ['registry.acme.test/'], allowed: true },
    { image: 'nginx', registries: [], allowed: false },
  ])('$image with $registries: $allowed', ({ image, registries, allowed }) => {
    expect(imageAllowed(image, registries)).toBe(allowed);
  });
});
