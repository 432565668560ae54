import { describe, expect, it } from 'vitest';
import { instanceEnv, tenantIdentity } from '../../src/providers/sandbox.js';

describe('tenantIdentity', () => {
  const range = { base: 2_000_000, count: 1_000_000_000 };

  it('gives a tenant the same uid every time, inside the range, with a gid of the same number', () => {
    const acme = tenantIdentity('acme', range);
    expect(tenantIdentity('acme', range)).toEqual(acme);
    expect(acme.gid).toBe(acme.uid);
    expect(acme.uid).toBeGreaterThanOrEqual(range.base);
    expect(acme.uid).toBeLessThan(range.base + range.count);
  });

  it('spreads tenants over the range', () => {
    const uids = new Set(Array.from({ length: 1000 }, (_, i) => tenantIdentity(`tenant-${i}`, range).uid));
    expect(uids.size).toBe(1000);
    expect(tenantIdentity('x', { base: 5000, count: 1 }).uid).toBe(5000);
  });
});

describe('instanceEnv', () => {
  const instance = { port: 4100, host: '127.0.0.1', home: '/tmp/switchyard-instance-x' };

  it.each([
    {
      label: 'keeps only PATH and LANG of the parent',
      parent: { PATH: '/usr/bin', LANG: 'C.UTF-8', HOME: '/root', SWITCHYARD_ADMIN_TOKEN: 't', NATS_URL: 'nats://x' },
      revision: {},
      want: { PATH: '/usr/bin', LANG: 'C.UTF-8', PORT: '4100', HOST: '127.0.0.1', HOME: instance.home, TMPDIR: instance.home },
    },
    {
      label: 'the platform values win over the revision env, which wins over the parent',
      parent: { PATH: '/usr/bin' },
      revision: { PORT: '1', HOME: '/', PATH: '/opt/bin', GREETING: 'hi' },
      want: { PATH: '/opt/bin', GREETING: 'hi', PORT: '4100', HOST: '127.0.0.1', HOME: instance.home, TMPDIR: instance.home },
    },
  ])('$label', ({ parent, revision, want }) => {
    expect(instanceEnv(parent, revision as Record<string, string>, instance)).toEqual(want);
  });
});
