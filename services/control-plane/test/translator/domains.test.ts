import { describe, expect, it } from 'vitest';
import { DomainClaims, grantCovers, isWildcard } from '../../src/translator/domains.js';

describe('grantCovers', () => {
  it.each([
    [['acme.test'], 'acme.test', true],
    [['acme.test'], 'www.acme.test', true],
    [['acme.test'], 'a.b.acme.test', true],
    [['acme.test'], '*.acme.test', true],
    [['acme.test'], '*.eu.acme.test', true],
    [['acme.test'], '*.test', false],
    [['acme.test'], 'notacme.test', false],
    [['acme.test'], 'acme.test.evil', false],
    [['acme.test', 'globex.test'], 'www.globex.test', true],
    [[], 'acme.test', false],
  ])('grants %j cover %s: %s', (grants, domain, expected) => {
    expect(grantCovers(grants, domain)).toBe(expected);
  });
});

describe('DomainClaims', () => {
  it.each([
    ['api.acme.test', 'api.acme.test', true],
    ['api.acme.test', 'www.acme.test', false],
    ['*.acme.test', 'api.acme.test', true],
    ['*.acme.test', 'a.b.acme.test', true],
    ['*.acme.test', 'acme.test', false],
    ['api.acme.test', '*.acme.test', true],
    ['a.b.acme.test', '*.acme.test', true],
    ['acme.test', '*.acme.test', false],
    ['*.acme.test', '*.acme.test', true],
    ['*.acme.test', '*.eu.acme.test', true],
    ['*.eu.acme.test', '*.acme.test', true],
    ['*.eu.acme.test', '*.us.acme.test', false],
    ['*.eu.acme.test', 'eu.acme.test', false],
    ['*.acme.test', '*.globex.test', false],
  ])('claimed %s, then %s overlaps: %s', (first, second, overlaps) => {
    const claims = new DomainClaims<string>();
    claims.claim(first, 'first');
    expect(claims.conflict(second)).toBe(overlaps ? 'first' : undefined);
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
