import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMessage, lookupType } from '@switchyard/shared';
import { Catalog, type CheckTarget } from '../src/catalog.js';
import { buildSpecifier } from '../src/specifier.js';
import { record } from './fixtures.js';

const golden = (name: string) => join(import.meta.dirname, 'golden', name);
const update = process.env.UPDATE_GOLDEN === '1';

function targets(): CheckTarget[] {
  const catalog = new Catalog();
  const http = catalog.setService(
    record('acme', 'web', {
      revisions: [
        {
          name: 'v1',
          endpoints: [
            { address: '10.0.0.2', port: 8080 },
            { address: '10.0.0.1', port: 8080 },
          ],
        },
      ],
      healthCheck: { protocol: 'http', path: '/healthz', interval: '2s', timeout: '500ms', healthyThreshold: 2, unhealthyThreshold: 3 },
    }),
  );
  const grpc = catalog.setService(
    record('acme', 'rpc', {
      protocol: 'grpc',
      revisions: [{ name: 'v1', endpoints: [{ address: 'fd00::1', port: 50051 }] }],
      healthCheck: { protocol: 'http', path: '/health' },
    }),
  );
  const tcp = catalog.setService(record('beta', 'db', { revisions: [{ name: 'r1', endpoints: [{ address: '10.1.0.1', port: 5432 }] }] }));
  return [...tcp.upserted, ...grpc.upserted, ...http.upserted];
}

describe('HealthCheckSpecifier', () => {
  it('matches the golden file, is a valid Envoy message and encodes', () => {
    const specifier = buildSpecifier(targets(), 1000);
    expect(checkMessage('envoy.service.health.v3.HealthCheckSpecifier', specifier)).toEqual([]);
    const type = lookupType('envoy.service.health.v3.HealthCheckSpecifier');
    const decoded = type.toObject(type.decode(type.encode(type.fromObject(specifier)).finish()), { enums: String });
    expect(decoded.cluster_health_checks).toHaveLength(3);
    const text = `${JSON.stringify(specifier, null, 2)}\n`;
    if (update) writeFileSync(golden('specifier.json'), text);
    expect(text).toBe(readFileSync(golden('specifier.json'), 'utf8'));
  });

  it('is the same whatever the order of the targets', () => {
    const list = targets();
    expect(buildSpecifier([...list].reverse(), 1000)).toEqual(buildSpecifier(list, 1000));
  });

  it('is empty (but valid) for an Envoy with nothing to check', () => {
    const specifier = buildSpecifier([], 1500);
    expect(specifier).toEqual({ cluster_health_checks: [], interval: { seconds: 1, nanos: 500_000_000 } });
    expect(checkMessage('envoy.service.health.v3.HealthCheckSpecifier', specifier)).toEqual([]);
  });
});
