import { describe, expect, it } from 'vitest';
import { DomainClaims, grantCovers, grantsCover, grantsOverlap, hostsOverlap, isWildcard } from '../src/domains.js';

/**
 * The domain rules both callers use: the API's policy (store/policy.ts) refuses what the
 * translator (translator/build-ir.ts) would drop, because both ask src/domains.ts.
 */

describe('what a grant covers', () => {
  const cases: { grant: string; host: string; want: boolean }[] = [
    { grant: 'acme.test', host: 'acme.test', want: true },
    { grant: 'acme.test', host: 'api.acme.test', want: true },
    { grant: 'acme.test', host: 'a.b.acme.test', want: true },
    { grant: 'acme.test', host: '*.acme.test', want: true },
    { grant: 'acme.test', host: '*.api.acme.test', want: true },
    { grant: 'acme.test', host: 'notacme.test', want: false },
    { grant: 'acme.test', host: 'acme.test.evil', want: false },
    { grant: 'acme.test', host: '*.test', want: false },
    { grant: 'api.acme.test', host: 'acme.test', want: false },
  ];
  it.each(cases)('$grant covers $host: $want', ({ grant, host, want }) => {
    expect(grantCovers(grant, host)).toBe(want);
    expect(grantsCover(['other.example', grant], host)).toBe(want);
  });

  it('covers nothing without grants', () => {
    expect(grantsCover([], 'acme.test')).toBe(false);
  });
});

describe('grants that overlap', () => {
  const cases: { a: string; b: string; want: boolean }[] = [
    { a: 'acme.test', b: 'acme.test', want: true },
    { a: 'acme.test', b: 'api.acme.test', want: true },
    { a: 'api.acme.test', b: 'acme.test', want: true },
    { a: 'acme.test', b: 'globex.test', want: false },
    { a: 'acme.test', b: 'xacme.test', want: false },
    { a: 'test', b: 'acme.test', want: true },
  ];
  it.each(cases)('$a vs $b: $want', ({ a, b, want }) => {
    expect(grantsOverlap(a, b)).toBe(want);
  });
});

/** Host patterns that overlap: checked by the policy pairwise and by the translator's index, which must agree. */
const overlapCases: { a: string; b: string; want: boolean }[] = [
  { a: 'api.acme.test', b: 'api.acme.test', want: true },
  { a: 'api.acme.test', b: 'web.acme.test', want: false },
  { a: '*.acme.test', b: 'api.acme.test', want: true },
  { a: 'api.acme.test', b: '*.acme.test', want: true },
  { a: '*.acme.test', b: 'a.b.acme.test', want: true },
  { a: 'a.b.acme.test', b: '*.acme.test', want: true },
  { a: '*.acme.test', b: 'acme.test', want: false },
  { a: 'acme.test', b: '*.acme.test', want: false },
  { a: '*.acme.test', b: '*.acme.test', want: true },
  { a: '*.acme.test', b: '*.api.acme.test', want: true },
  { a: '*.api.acme.test', b: '*.acme.test', want: true },
  { a: '*.api.acme.test', b: '*.web.acme.test', want: false },
  { a: '*.api.acme.test', b: 'api.acme.test', want: false },
  { a: '*.acme.test', b: 'xacme.test', want: false },
  { a: '*.acme.test', b: '*.globex.test', want: false },
];

describe('host patterns that overlap', () => {
  it.each(overlapCases)('$a vs $b: $want', ({ a, b, want }) => {
    expect(hostsOverlap(a, b)).toBe(want);
    const claims = new DomainClaims<string>();
    claims.claim(a, 'first');
    expect(claims.conflict(b)).toBe(want ? 'first' : undefined);
  });

  it('agrees between the pairwise rule and the index for every pair of patterns', () => {
    const patterns = [
      ...new Set(overlapCases.flatMap((c) => [c.a, c.b])),
      'eu.acme.test',
      '*.eu.acme.test',
      'x.eu.acme.test',
      'test',
      '*.test',
    ];
    for (const a of patterns) {
      for (const b of patterns) {
        const claims = new DomainClaims<string>();
        claims.claim(a, a);
        expect({ a, b, overlap: claims.conflict(b) !== undefined }).toEqual({ a, b, overlap: hostsOverlap(a, b) });
      }
    }
  });

  it('names the owner of the overlapping claim', () => {
    const claims = new DomainClaims<string>();
    claims.claim('api.acme.test', 'acme/api');
    claims.claim('*.globex.test', 'globex/web');
    expect(claims.conflict('*.acme.test')).toBe('acme/api');
    expect(claims.conflict('shop.globex.test')).toBe('globex/web');
    expect(claims.conflict('www.acme.test')).toBeUndefined();
  });

  it('recognises wildcards', () => {
    expect(isWildcard('*.acme.test')).toBe(true);
    expect(isWildcard('acme.test')).toBe(false);
  });
});
