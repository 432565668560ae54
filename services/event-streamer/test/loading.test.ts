import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishDurable } from '@switchyard/shared';
import type { HealthChecking } from '../src/health.js';
import { endpointSet, record } from './fixtures.js';
import { putService, startBus, startHealth, type Bus } from './harness.js';

/** Start-up against a bus that already holds history: several generations and KV revisions per key. */
describe('loading the desired state at start', () => {
  let bus: Bus;
  let health: HealthChecking | undefined;
  const server = new grpc.Server();

  beforeAll(async () => {
    bus = await startBus();
    const blue = { tenant: 'acme', service: 'api', revision: 'blue' };
    const green = { tenant: 'acme', service: 'api', revision: 'green' };
    const twoRevisions = {
      revisions: [
        { name: 'blue', command: 'serve' },
        { name: 'green', command: 'serve' },
      ],
      traffic: [
        { revision: 'blue', percent: 50 },
        { revision: 'green', percent: 50 },
      ],
    };
    await putService(bus.kv, record('acme', 'api'));
    await putService(bus.kv, record('acme', 'api', { ...twoRevisions, healthCheck: { protocol: 'http' } }));
    await putService(bus.kv, record('acme', 'api', twoRevisions));
    await putService(bus.kv, record('acme', 'gone'));
    await bus.kv.delete('services.acme.gone');
    for (let generation = 1; generation <= 3; generation++) {
      await publishDurable(
        bus.js,
        'endpoints',
        endpointSet(
          blue,
          generation,
          Array.from({ length: generation }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 80 })),
        ),
      );
    }
    await publishDurable(bus.js, 'endpoints', endpointSet(green, 1, [{ address: '10.0.1.1', port: 80 }]));
    await publishDurable(bus.js, 'endpoints', endpointSet(green, 2, [{ address: '10.0.1.2', port: 80 }]));
    await publishDurable(
      bus.js,
      'endpoints',
      endpointSet({ tenant: 'acme', service: 'gone', revision: 'blue' }, 1, [{ address: '10.0.9.1', port: 80 }]),
    );
  });
  afterAll(async () => {
    await health?.stop();
    server.forceShutdown();
    await bus?.close();
  });

  it('becomes ready with the latest of everything', async () => {
    health = await startHealth(bus, server, { reportIntervalMs: 1000 });
    await health.loaded;
    const { catalog } = health.coordinator;
    expect(catalog.size).toBe(4);
    for (const key of [
      'sy_acme_api_blue|10.0.0.1|80',
      'sy_acme_api_blue|10.0.0.2|80',
      'sy_acme_api_blue|10.0.0.3|80',
      'sy_acme_api_green|10.0.1.2|80',
    ]) {
      expect(catalog.get(key)?.check.protocol, key).toBe('tcp');
    }
  });
});
