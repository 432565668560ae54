import { describe, expect, it } from 'vitest';
import { Catalog } from '../src/catalog.js';
import { endpointSet, record } from './fixtures.js';

const blue = { tenant: 'acme', service: 'api', revision: 'blue' };

describe('Catalog', () => {
  it('takes static endpoints from the spec with the service health-check settings', () => {
    const catalog = new Catalog();
    const diff = catalog.setService(
      record('acme', 'api', {
        revisions: [{ name: 'blue', endpoints: [{ address: '10.0.0.1', port: 80 }] }],
        healthCheck: { protocol: 'http', path: '/healthz', interval: '2s', timeout: '1s', gracePeriod: '30s' },
      }),
    );
    expect(diff.removed).toEqual([]);
    expect(diff.upserted).toEqual([
      {
        key: 'sy_acme_api_blue|10.0.0.1|80',
        cluster: 'sy_acme_api_blue',
        ref: blue,
        address: '10.0.0.1',
        port: 80,
        check: {
          protocol: 'http',
          path: '/healthz',
          intervalMs: 2000,
          timeoutMs: 1000,
          healthyThreshold: 1,
          unhealthyThreshold: 5,
          gracePeriodMs: 30_000,
          host: 'api.acme.example.com',
          http2: false,
        },
      },
    ]);
  });

  it('prefers the endpoint set of a revision and ignores older generations', () => {
    const catalog = new Catalog();
    catalog.setService(record('acme', 'api'));
    expect(catalog.size).toBe(0);
    const first = catalog.setEndpointSet(endpointSet(blue, 2, [{ address: '10.0.0.1', port: 8080, startedAt: 500 }]));
    expect(first?.upserted.map((t) => [t.key, t.startedAt, t.id])).toEqual([['sy_acme_api_blue|10.0.0.1|8080', 500, 'i-0']]);
    expect(catalog.setEndpointSet(endpointSet(blue, 1, []))).toBeUndefined();
    const next = catalog.setEndpointSet(
      endpointSet(blue, 3, [
        { address: '10.0.0.1', port: 8080, startedAt: 500 },
        { address: '10.0.0.2', port: 8080, startedAt: 900, id: 'i-2' },
        { address: '10.0.0.2', port: 8080, startedAt: 900, id: 'i-2' },
      ]),
    );
    expect(next).toEqual({ upserted: [expect.objectContaining({ key: 'sy_acme_api_blue|10.0.0.2|8080' })], removed: [] });
    expect(catalog.setEndpointSet(endpointSet(blue, 4, [{ address: '10.0.0.2', port: 8080, startedAt: 900, id: 'i-2' }]))).toEqual({
      upserted: [],
      removed: ['sy_acme_api_blue|10.0.0.1|8080'],
    });
  });

  it('holds endpoint sets that arrive before their service and applies them with it', () => {
    const catalog = new Catalog();
    expect(catalog.setEndpointSet(endpointSet(blue, 1, [{ address: '10.0.0.1', port: 8080 }]))).toEqual({ upserted: [], removed: [] });
    expect(catalog.setService(record('acme', 'api')).upserted).toHaveLength(1);
    expect(catalog.hasCluster('sy_acme_api_blue')).toBe(true);
  });

  it('updates every target when the health check changes and drops removed revisions and services', () => {
    const catalog = new Catalog();
    const twoRevisions = {
      revisions: [
        { name: 'blue', endpoints: [{ address: '10.0.0.1', port: 80 }] },
        { name: 'green', endpoints: [{ address: '10.0.1.1', port: 80 }] },
      ],
      traffic: [
        { revision: 'blue', percent: 50 },
        { revision: 'green', percent: 50 },
      ],
    };
    catalog.setService(record('acme', 'api', twoRevisions));
    expect(catalog.setService(record('acme', 'api', twoRevisions))).toEqual({ upserted: [], removed: [] });
    const changed = catalog.setService(record('acme', 'api', { ...twoRevisions, healthCheck: { protocol: 'http' } }));
    expect(changed.upserted.map((t) => t.check.protocol)).toEqual(['http', 'http']);
    const dropGreen = catalog.setService(record('acme', 'api', { revisions: [twoRevisions.revisions[0]!] }));
    expect(dropGreen.removed).toEqual(['sy_acme_api_green|10.0.1.1|80']);
    expect(catalog.deleteService('acme', 'api')).toEqual({ upserted: [], removed: ['sy_acme_api_blue|10.0.0.1|80'] });
    expect(catalog.size).toBe(0);
    expect(catalog.hasCluster('sy_acme_api_blue')).toBe(false);
  });
});
