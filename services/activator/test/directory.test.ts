import { describe, expect, it } from 'vitest';
import { chooseRevision, Directory, grpcTimeoutMs, hostOf, type ServiceEntry } from '../src/directory.js';

const entry = (service: string, domains: string[], createdAt = 1, split = [{ revision: 'v1', percent: 100 }]): ServiceEntry => ({
  tenant: 'acme',
  service,
  createdAt,
  domains,
  revisions: split.map((t) => t.revision),
  split,
  maxConcurrency: 100,
  timeoutMs: 120_000,
});

describe('Directory.lookup', () => {
  const directory = new Directory();
  directory.put(entry('api', ['api.acme.test']));
  directory.put(entry('wild', ['*.acme.test']));
  directory.put(entry('deep', ['*.eu.acme.test']));
  directory.put(entry('newer', ['api.acme.test'], 5));

  it.each([
    ['api.acme.test', 'api'],
    ['API.acme.test:8080', 'api'],
    ['other.acme.test', 'wild'],
    ['x.eu.acme.test', 'deep'],
    ['acme.test', undefined],
    ['api.other.test', undefined],
  ])('%s → %s', (authority, service) => {
    expect(directory.lookup(authority)?.service).toBe(service);
  });

  it('a deleted service frees its domains for the next claim', () => {
    const d = new Directory();
    d.put(entry('old', ['x.test'], 1));
    d.put(entry('young', ['x.test'], 2));
    d.delete('acme', 'old');
    expect(d.lookup('x.test')?.service).toBe('young');
    d.delete('acme', 'young');
    expect(d.lookup('x.test')).toBeUndefined();
  });
});

describe('chooseRevision', () => {
  const split = entry('api', ['api.acme.test'], 1, [
    { revision: 'blue', percent: 80 },
    { revision: 'green', percent: 20 },
    { revision: 'old', percent: 0 },
  ]);
  const none = () => false;

  it.each([
    [
      'a named revision of the service',
      { tenant: 'acme', service: 'api', revision: 'old' },
      { ref: { tenant: 'acme', service: 'api', revision: 'old' } },
    ],
    [
      'another service',
      { tenant: 'acme', service: 'web', revision: 'blue' },
      { error: expect.stringMatching(/not a revision of the service/) },
    ],
    [
      'another tenant',
      { tenant: 'evil', service: 'api', revision: 'blue' },
      { error: expect.stringMatching(/not a revision of the service/) },
    ],
    ['an unknown revision', { tenant: 'acme', service: 'api', revision: 'v9' }, { error: expect.stringMatching(/not a revision/) }],
  ])('%s', (_label, named, want) => {
    expect(chooseRevision(split, named, none, 0)).toEqual(want);
  });

  it.each([
    [0, none, 'blue'],
    [0.79, none, 'blue'],
    [0.8, none, 'green'],
    [0.99, none, 'green'],
    [0, (r: string) => r === 'blue', 'green'],
    [0.5, () => true, 'blue'],
  ])('unnamed, random %s: %s', (random, hasReady, revision) => {
    expect(chooseRevision(split, undefined, hasReady, random)).toEqual({ ref: { tenant: 'acme', service: 'api', revision } });
  });
});

describe('grpc-timeout and authority', () => {
  it.each([
    ['1S', 1000],
    ['250m', 250],
    ['2M', 120_000],
    ['1H', 3_600_000],
    ['1500u', 2],
    ['5n', 1],
    ['soon', undefined],
    ['123456789S', undefined],
    [undefined, undefined],
  ])('grpc-timeout %s → %s ms', (value, ms) => {
    expect(grpcTimeoutMs(value)).toBe(ms);
  });

  it.each([
    ['Api.Acme.Test:443', 'api.acme.test'],
    ['[::1]:8080', '[::1]'],
    ['host', 'host'],
  ])('host of %s is %s', (authority, host) => {
    expect(hostOf(authority)).toBe(host);
  });
});
