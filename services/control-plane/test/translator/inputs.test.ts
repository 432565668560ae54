import { describe, expect, it } from 'vitest';
import type { EndpointSet, HealthTransition } from '@switchyard/shared';
import { recordEndpointSet, recordHealth, type EndpointHealth } from '../../src/translator/index.js';

const ref = { tenant: 'acme', service: 'api', revision: 'v1' };

function set(generation: number): EndpointSet {
  return {
    schemaVersion: 1,
    ...ref,
    generation,
    endpoints: [{ id: `i${generation}`, address: '10.0.0.1', port: 80, state: 'ready' }],
    ts: generation,
  };
}

function transition(state: HealthTransition['state'], ts: number): HealthTransition {
  return {
    schemaVersion: 1,
    ...ref,
    endpoint: { address: 'fd00::1', port: 80 },
    state,
    previous: 'unknown',
    reason: 'test',
    votes: [],
    ts,
  };
}

describe('recordEndpointSet', () => {
  it('keeps the newest generation per revision', () => {
    const sets = new Map<string, EndpointSet>();
    expect(recordEndpointSet(sets, set(2), 0)).toBe('recorded');
    expect(recordEndpointSet(sets, set(1), 0)).toBe('stale');
    expect(recordEndpointSet(sets, set(2), 0)).toBe('stale');
    expect(recordEndpointSet(sets, set(3), 0)).toBe('recorded');
    expect(sets.get('sy_acme_api_v1')?.generation).toBe(3);
  });

  it('refuses a generation more than a minute ahead of the clock, so a forged one cannot pin a set', () => {
    const sets = new Map<string, EndpointSet>();
    const now = 1_700_000_000_000;
    expect(recordEndpointSet(sets, set(9e15), now)).toBe('from_future');
    expect(recordEndpointSet(sets, set(now + 60_001), now)).toBe('from_future');
    expect(recordEndpointSet(sets, set(now + 60_000), now)).toBe('recorded');
    expect(recordEndpointSet(sets, set(now + 60_001), now + 1)).toBe('recorded');
  });
});

describe('recordHealth', () => {
  it('records transitions by cluster and endpoint, ignoring stale and repeated ones', () => {
    const health = new Map<string, ReadonlyMap<string, EndpointHealth>>();
    expect(recordHealth(health, transition('unhealthy', 10))).toBe(true);
    expect(recordHealth(health, transition('unhealthy', 20))).toBe(false);
    expect(recordHealth(health, transition('healthy', 5))).toBe(false);
    expect(health.get('sy_acme_api_v1')?.get('[fd00::1]:80')).toEqual({ state: 'unhealthy', since: 10 });
    expect(recordHealth(health, transition('healthy', 30))).toBe(true);
    expect(health.get('sy_acme_api_v1')?.get('[fd00::1]:80')).toEqual({ state: 'healthy', since: 30 });
  });
});
