import { describe, expect, it } from 'vitest';
import { CliError, ExitCode } from '../src/errors.js';
import { parseServiceFile, parseTrafficSplit } from '../src/service-file.js';

describe('parseServiceFile', () => {
  const cases: { label: string; text: string; want: ReturnType<typeof parseServiceFile> }[] = [
    {
      label: 'YAML spec with a name',
      text: 'name: echo\ndomains: [echo.acme.test]\nrevisions:\n  - name: blue\n    endpoints: [{address: 127.0.0.1, port: 50051}]\n',
      want: {
        name: 'echo',
        tenant: undefined,
        spec: { domains: ['echo.acme.test'], revisions: [{ name: 'blue', endpoints: [{ address: '127.0.0.1', port: 50051 }] }] },
      },
    },
    {
      label: 'JSON spec without a name',
      text: '{"domains":["a.test"],"revisions":[{"name":"v1","image":"x"}]}',
      want: { name: undefined, tenant: undefined, spec: { domains: ['a.test'], revisions: [{ name: 'v1', image: 'x' }] } },
    },
    {
      label: 'the shape "service get -o json" prints',
      text: JSON.stringify({ tenant: 'acme', name: 'echo', revision: 4, spec: { domains: ['a.test'] }, status: {} }),
      want: { name: 'echo', tenant: 'acme', spec: { domains: ['a.test'] } },
    },
  ];
  it.each(cases)('$label', ({ text, want }) => {
    expect(parseServiceFile(text, 'service.yaml')).toEqual(want);
  });

  it.each([
    { label: 'broken YAML', text: 'domains: [a.test\n', message: /service.yaml: not valid YAML or JSON/ },
    { label: 'an empty file', text: '', message: /must hold one object/ },
    { label: 'a list', text: '- a\n- b\n', message: /must hold one object/ },
    { label: 'a numeric name', text: 'name: 42\ndomains: []\n', message: /"name" must be a string/ },
    { label: 'a spec that is not an object', text: 'name: x\nspec: 3\n', message: /"spec" must be an object/ },
  ])('is a usage error for $label', ({ text, message }) => {
    let caught: unknown;
    try {
      parseServiceFile(text, 'service.yaml');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CliError);
    expect((caught as CliError).exitCode).toBe(ExitCode.usage);
    expect((caught as CliError).message).toMatch(message);
  });
});

describe('parseTrafficSplit', () => {
  it('reads revision=percent pairs, with an optional %', () => {
    expect(parseTrafficSplit(['blue=90', 'green=10%'])).toEqual([
      { revision: 'blue', percent: 90 },
      { revision: 'green', percent: 10 },
    ]);
  });
  it.each(['blue:90', 'blue=', '=10', 'blue=ninety', 'blue=1000', 'blue = 90'])('refuses %s', (arg) => {
    expect(() => parseTrafficSplit([arg])).toThrow(/is not <revision>=<percent>/);
  });
});
