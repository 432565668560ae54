import { describe, expect, it } from 'vitest';
import { RouteTable } from '../../src/api/allowed-methods.js';
import { MalformedTagList, evaluatePreconditions, parsePreconditions, parseTagList } from '../../src/api/preconditions.js';

describe('parseTagList', () => {
  it.each([
    { value: '*', want: { any: true, strong: [], weak: [] } },
    { value: ' * ', want: { any: true, strong: [], weak: [] } },
    { value: '"42"', want: { any: false, strong: [42], weak: [] } },
    { value: '42', want: { any: false, strong: [42], weak: [] } },
    { value: 'W/"42"', want: { any: false, strong: [], weak: [42] } },
    { value: '"1", W/"2" ,"3"', want: { any: false, strong: [1, 3], weak: [2] } },
    // Well-formed tags this server never issues match nothing.
    { value: '"abc"', want: { any: false, strong: [], weak: [] } },
    { value: '""', want: { any: false, strong: [], weak: [] } },
  ])('$value', ({ value, want }) => {
    expect(parseTagList('if-match', value)).toEqual(want);
  });

  it.each(['', 'latest', '"42', '42"', '"1" "2"', 'W/42', '*, "1"'])('refuses %j', (value) => {
    expect(() => parseTagList('if-none-match', value)).toThrow(MalformedTagList);
  });
});

describe('evaluatePreconditions', () => {
  const cases: { label: string; headers: Record<string, string>; current: number | undefined; fails?: string }[] = [
    { label: 'no preconditions, absent', headers: {}, current: undefined },
    { label: 'no preconditions, present', headers: {}, current: 7 },
    { label: 'If-Match current', headers: { 'if-match': '"7"' }, current: 7 },
    { label: 'If-Match in a list', headers: { 'if-match': '"3", "7"' }, current: 7 },
    { label: 'If-Match stale', headers: { 'if-match': '"3"' }, current: 7, fails: 'header.if-match' },
    { label: 'If-Match weak never matches', headers: { 'if-match': 'W/"7"' }, current: 7, fails: 'header.if-match' },
    { label: 'If-Match on an absent record', headers: { 'if-match': '"7"' }, current: undefined, fails: 'header.if-match' },
    { label: 'If-Match * present', headers: { 'if-match': '*' }, current: 7 },
    { label: 'If-Match * absent', headers: { 'if-match': '*' }, current: undefined, fails: 'header.if-match' },
    { label: 'If-None-Match * absent', headers: { 'if-none-match': '*' }, current: undefined },
    { label: 'If-None-Match * present', headers: { 'if-none-match': '*' }, current: 7, fails: 'header.if-none-match' },
    { label: 'If-None-Match other', headers: { 'if-none-match': '"3"' }, current: 7 },
    { label: 'If-None-Match current', headers: { 'if-none-match': '"7"' }, current: 7, fails: 'header.if-none-match' },
    { label: 'If-None-Match weak current', headers: { 'if-none-match': 'W/"7"' }, current: 7, fails: 'header.if-none-match' },
    { label: 'If-Match is judged first', headers: { 'if-match': '"3"', 'if-none-match': '*' }, current: 7, fails: 'header.if-match' },
    { label: 'both hold', headers: { 'if-match': '*', 'if-none-match': '"3"' }, current: 7 },
  ];
  it.each(cases)('$label', ({ headers, current, fails }) => {
    expect(evaluatePreconditions(parsePreconditions(headers), current, 'service "x"')?.field).toBe(fails);
  });

  it('names the current ETag when If-Match is stale', () => {
    expect(evaluatePreconditions(parsePreconditions({ 'if-match': '"3"' }), 7, 'service "x"')?.message).toBe(
      'is "3", but service "x" is at "7" now; read it again and retry',
    );
  });
});

describe('RouteTable', () => {
  const table = new RouteTable();
  table.add('/v1/tenants/:tenant', 'PUT');
  table.add('/v1/tenants/:tenant', ['GET', 'HEAD']);
  table.add('/v1/tenants/:tenant/services/:service/traffic', 'PUT');
  table.add('/openapi.json', 'GET');

  it.each([
    { path: '/v1/tenants/acme', want: ['GET', 'HEAD', 'PUT'] },
    { path: '/v1/tenants/acme/services/web/traffic', want: ['PUT'] },
    { path: '/openapi.json', want: ['GET'] },
    { path: '/openapiXjson', want: [] },
    { path: '/v1/tenants/acme/extra', want: [] },
    { path: '/v1/tenants/', want: [] },
  ])('$path allows $want', ({ path, want }) => {
    expect(table.allowed(path)).toEqual(want);
  });
});
