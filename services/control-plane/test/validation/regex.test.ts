import { describe, expect, it } from 'vitest';
import { estimateProgramSize, maxProgramSize, re2Problem } from '../../src/validation/regex.js';

describe('re2Problem', () => {
  it.each([
    ['/api/v[0-9]+/users', undefined],
    ['(?P<id>[0-9]+)', undefined],
    ['[[:alpha:]]+', undefined],
    ['/items/\\d{1,6}', undefined],
  ])('accepts %s', (pattern, expected) => {
    expect(re2Problem(pattern)).toBe(expected);
  });

  it.each([
    ['/(?!admin).*', 'invalid perl operator: (?!'],
    ['(?=x)', 'invalid perl operator: (?='],
    ['(?<=x)y', 'invalid perl operator: (?<'],
    ['(a)\\1', 'invalid escape sequence: \\1'],
    ['a{1001}', 'invalid repetition size'],
    ['(', 'missing )'],
  ])('rejects %s as RE2 does', (pattern, reason) => {
    expect(re2Problem(pattern)).toContain(reason);
  });

  it('rejects a regex whose estimated program is over the limit', () => {
    expect(re2Problem('/([^/]+/){20}')).toMatch(/too complex for Envoy \(estimated RE2 program size \d+, at most 100\)/);
  });
});

describe('estimateProgramSize', () => {
  it('counts literals one each, plus the match instructions', () => {
    expect(estimateProgramSize('abc')).toBe(5);
  });

  it('counts a class or "." as several instructions', () => {
    expect(estimateProgramSize('[a-z]')).toBe(estimateProgramSize('.'));
    expect(estimateProgramSize('[a-z]')).toBeGreaterThan(estimateProgramSize('ab'));
    expect(estimateProgramSize('\\d')).toBe(estimateProgramSize('[0-9]'));
  });

  it('does not end a class at an escaped or leading "]"', () => {
    expect(estimateProgramSize('[]a]')).toBe(estimateProgramSize('[x]'));
    expect(estimateProgramSize('[\\]a]')).toBe(estimateProgramSize('[x]'));
  });

  it('expands counted repetition of the preceding atom or group', () => {
    const once = estimateProgramSize('(ab)');
    expect(estimateProgramSize('(ab){10}')).toBeGreaterThan(9 * (once - 2));
    expect(estimateProgramSize('a{3,8}')).toBeGreaterThan(estimateProgramSize('a{3}'));
  });

  it('keeps common route patterns well under the limit', () => {
    for (const pattern of ['/api/v[0-9]+/users/[^/]+', '/items/[0-9]+', '/(css|js|img)/.*\\.(css|js|png)']) {
      expect(estimateProgramSize(pattern)).toBeLessThan(maxProgramSize);
    }
  });
});

describe('re2Problem on many patterns', () => {
  it('frees what it compiles (WebAssembly memory is not garbage-collected)', () => {
    for (let i = 0; i < 25_000; i++) expect(re2Problem(`/r${i}/[0-9]+`)).toBeUndefined();
    // Not a speed check: 25,000 compiles take seconds, a minute on a crowded CI machine.
  }, 180_000);

  it('does not let a pattern close a group it did not open', () => {
    expect(re2Problem('a)|(b')).toContain('unexpected )');
  });
});
