import { describe, expect, it } from 'vitest';
import { clusterName, parseClusterName } from '../src/names.js';

describe('cluster names', () => {
  it.each([
    { tenant: 'acme', service: 'api', revision: 'blue' },
    { tenant: 'a-b', service: 'c-d-e', revision: 'v-1' },
    { tenant: '0', service: '1', revision: '2' },
  ])('round-trips $tenant/$service/$revision without dots', (ref) => {
    const name = clusterName(ref);
    expect(name).not.toContain('.');
    expect(parseClusterName(name)).toEqual(ref);
  });

  it.each(['outbound|80||foo', 'sy_a_b', 'sy_a_b_c_d', 'sy_A_b_c', 'sy_a__c', 'local_agent'])('rejects foreign cluster %s', (name) => {
    expect(parseClusterName(name)).toBeUndefined();
  });
});
