import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreams, publishDurable, type EndpointSet, type NatsConnection } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { BusInputs } from '../../src/controller/bus-inputs.js';
import { StoreFixture } from '../store/fixture.js';

const endpointSetOf = (i: number): EndpointSet => ({
  schemaVersion: 1,
  tenant: 'acme',
  service: `svc-${Math.floor(i / 10)}`,
  revision: `r${i % 10}`,
  generation: 1,
  endpoints: [{ id: `i-${i}`, address: '10.0.0.1', port: 1000 + i, state: 'ready' }],
  ts: 1,
});

/**
 * Issue 12: a restarted control plane must hold every endpoint set on the stream before it
 * serves, or its first EDS is partial (Contour #1178).
 */
describe('bus inputs after a control-plane restart', () => {
  let fixture: StoreFixture;
  let nc: NatsConnection;
  const sets = 1200;

  beforeAll(async () => {
    fixture = await StoreFixture.start();
    nc = await fixture.connect();
    const { js } = await ensureStreams(nc);
    await Promise.all(Array.from({ length: sets }, (_, i) => publishDurable(js, 'endpoints', endpointSetOf(i))));
  }, 60_000);
  afterAll(async () => {
    await fixture.close();
  });

  it('holds every replayed endpoint set once start resolves, restart after restart', async () => {
    for (let restart = 0; restart < 5; restart++) {
      const inputs = await BusInputs.start(await fixture.connect(), { logger: fixture.logger, registry: new Registry() });
      expect(inputs.endpointSets.size).toBe(sets);
      await inputs.stop();
    }
  }, 60_000);
});
