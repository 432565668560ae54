import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreams, type EndpointSet, type NatsConnection } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { BusInputs } from '../../src/controller/bus-inputs.js';
import { StoreFixture, eventually } from '../store/fixture.js';

/** Forged endpoint sets, as anyone able to publish on the bus could send them, against a real nats-server. */

let fixture: StoreFixture;
let nc: NatsConnection;
let inputs: BusInputs;
const registry = new Registry();

beforeAll(async () => {
  fixture = await StoreFixture.start();
  nc = await fixture.connect();
  await ensureStreams(nc);
  inputs = await BusInputs.start(nc, { logger: fixture.logger, registry });
});
afterAll(async () => {
  await inputs?.stop();
  await fixture?.close();
});

function endpointSet(tenant: string, generation: number, address: string): EndpointSet {
  return {
    schemaVersion: 1,
    tenant,
    service: 'web',
    revision: 'v1',
    generation,
    endpoints: [{ id: `i-${generation}`, address, port: 8080, state: 'ready' }],
    ts: Date.now(),
  };
}

/** Publishes raw JSON on a subject of the caller's choosing: what a forger does. */
async function send(subject: string, payload: EndpointSet): Promise<void> {
  await jetstream(nc).publish(subject, JSON.stringify(payload));
}

async function dropped(reason: string): Promise<number> {
  const metric = await registry.getSingleMetric('switchyard_bus_messages_dropped_total')?.get();
  return metric?.values.find((v) => v.labels.kind === 'endpoints' && v.labels.reason === reason)?.value ?? 0;
}

const addressOf = (cluster: string) => inputs.endpointSets.get(cluster)?.endpoints[0]?.address;

describe('endpoint sets on the bus', () => {
  it("drops a set whose payload names another tenant than its subject, leaving that tenant's endpoints alone", async () => {
    const now = Date.now();
    await send('switchyard.endpoints.acme.web.v1', endpointSet('acme', now, '10.0.0.1'));
    await eventually(() => expect(addressOf('sy_acme_web_v1')).toBe('10.0.0.1'));

    await send('switchyard.endpoints.globex.web.v1', endpointSet('acme', now + 1, '10.6.6.6'));
    await eventually(async () => expect(await dropped('subject_mismatch')).toBe(1));
    expect(addressOf('sy_acme_web_v1')).toBe('10.0.0.1');
    expect(inputs.endpointSets.has('sy_globex_web_v1')).toBe(false);
  });

  it('drops a generation far ahead of the clock, so later real sets still apply', async () => {
    await send('switchyard.endpoints.acme.web.v1', endpointSet('acme', 9e15, '10.6.6.6'));
    await eventually(async () => expect(await dropped('from_future')).toBe(1));
    expect(addressOf('sy_acme_web_v1')).toBe('10.0.0.1');

    await send('switchyard.endpoints.acme.web.v1', endpointSet('acme', Date.now() + 5, '10.0.0.2'));
    await eventually(() => expect(addressOf('sy_acme_web_v1')).toBe('10.0.0.2'));
  });
});
