import { describe, expect, it } from 'vitest';
import { serviceSpec } from '@switchyard/shared';
import { beginDeployment, nextRevisionName } from '../../src/deployment/begin.js';

describe('nextRevisionName', () => {
  it.each([
    { service: 'web', taken: [], want: 'web-00001' },
    { service: 'web', taken: ['blue', 'green'], want: 'web-00001' },
    { service: 'web', taken: ['web-00003', 'web-00001'], want: 'web-00004' },
    // Another service's numbers, short numbers and suffixes do not count.
    { service: 'web', taken: ['webx-00009', 'web-12', 'web-00002a'], want: 'web-00001' },
    { service: 'web', taken: ['web-99999'], want: 'web-100000' },
    // Long names are cut so the result stays a DNS label (≤ 63 characters).
    { service: 'a'.repeat(63), taken: [], want: `${'a'.repeat(56)}-00001` },
    { service: `${'a'.repeat(55)}-b`, taken: [], want: `${'a'.repeat(55)}-00001` },
  ])('$service after $taken → $want', ({ service, taken, want }) => {
    const name = nextRevisionName(service, taken);
    expect(name).toBe(want);
    expect(name.length).toBeLessThanOrEqual(63);
  });
});

describe('beginDeployment', () => {
  const spec = serviceSpec.parse({
    domains: ['web.acme.test'],
    revisions: [
      { name: 'blue', endpoints: [{ address: '127.0.0.1', port: 1 }] },
      { name: 'web-00002', command: 'node server.js' },
    ],
    traffic: [
      { revision: 'blue', percent: 0 },
      { revision: 'web-00002', percent: 100 },
    ],
  });
  const ref = { tenant: 'acme', service: 'web' };

  it('names a new revision after the service, one past the last deployed', () => {
    const begun = beginDeployment(ref, spec, undefined, { command: 'node v3.js' }, 1);
    expect('deployment' in begun && begun.deployment.revision).toBe('web-00003');
  });

  it('refuses to redeploy a static revision, saying to shift its traffic', () => {
    expect(beginDeployment(ref, spec, undefined, { revision: 'blue' }, 1)).toMatchObject({
      status: 400,
      field: 'revision',
      message: expect.stringContaining('shift its traffic instead'),
    });
  });
});
