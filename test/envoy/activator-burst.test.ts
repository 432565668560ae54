import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@switchyard/local';
import type { HttpAnswer } from '@switchyard/demo';
import { allServices, BusRecorder, eventually, fastEnv, managedInstances } from '../support/stack.js';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';

const httpEchoCommand = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/http-echo-main.js')];
const maxConcurrency = 3;
const targetBurstCapacity = 6;

/**
 * Target burst capacity through a real Envoy: a revision with one ready instance of 3 requests
 * has a spare capacity of 3, below its target burst capacity of 6, so its traffic goes through
 * the activator even though it is not at zero. A burst of 18 slow requests is held there and
 * sent to the instances 3 at a time each (the instances count their own requests in flight),
 * the autoscaler scales out on the held count, and the activator steps out once the spare
 * capacity is back at or above 6.
 */
describe('target burst capacity: the activator in the path while spare capacity is short, behind a real Envoy', () => {
  let world: EnvoyWorld;
  let bus: BusRecorder;
  let activatorPort: number;

  beforeAll(async () => {
    world = await startEnvoyWorld({ services: allServices, env: fastEnv });
    bus = await BusRecorder.connect(world.nats);
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    activatorPort = ((await (await fetch(`${world.stack.adminUrl}/v1/activator`)).json()) as { port: number }).port;
  }, 60_000);
  afterAll(async () => {
    await bus?.close();
    await world?.stop();
  });

  /** The endpoints Envoy holds for the revision's cluster (`address:port`), from its admin `/clusters`. */
  async function edsEndpoints(cluster: string): Promise<string[]> {
    const text = (await world.envoy.admin('/clusters')).text;
    const hosts = new Set<string>();
    for (const line of text.split('\n')) {
      const match = new RegExp(`^${cluster}::(\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+)::`).exec(line);
      if (match !== null) hosts.add(match[1] as string);
    }
    return [...hosts];
  }

  it('one ready instance, a burst above its spare capacity: through the activator, none fails, no instance over maxConcurrency, out after scale-out', async () => {
    const cluster = 'sy_acme_burst_b1';
    const activator = `127.0.0.1:${activatorPort}`;
    await world.api.ok('PUT', '/v1/tenants/acme/services/burst', {
      domains: ['burst.acme.test'],
      healthCheck: { interval: '1s', timeout: '500ms' },
      retries: { attempts: 0 },
      scaling: { minInstances: 1, maxInstances: 8, maxConcurrency, targetUtilization: 1, targetBurstCapacity },
      revisions: [{ name: 'b1', command: httpEchoCommand, env: { REVISION: 'b1', START_DELAY_MS: '1000' } }],
    });
    await eventually(async () => (await managedInstances(world.stack, 'b1')).some((i) => i.state === 'ready'), 30_000);
    // 1 ready × 3 − 0 in flight = 3 < 6: EDS sends the revision's traffic to the activator.
    await eventually(async () => JSON.stringify(await edsEndpoints(cluster)) === JSON.stringify([activator]), 20_000);
    await world.until('burst.acme.test', '/', (a) => a.status === 200, 20_000);
    const pokes = bus.record('activate', 'switchyard.activate.acme.burst.b1');

    const answers: HttpAnswer[] = await Promise.all(
      Array.from({ length: 18 }, () => world.http('burst.acme.test', '/?delay_ms=1500', { timeoutMs: 60_000 })),
    );

    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body.slice(0, 160)}`)).toEqual([]);
    const maxInFlight = Math.max(...answers.map((a) => Number(a.headers['x-demo-max-in-flight'])));
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(maxConcurrency);
    // The held requests made the autoscaler scale out: more than the one instance answered.
    expect(new Set(answers.map((a) => a.headers['x-demo-instance'])).size).toBeGreaterThan(1);
    expect(Math.max(0, ...pokes.map((p) => p.held))).toBeGreaterThan(0);

    // Spare capacity back at or above 6 (several instances, nothing in flight) for the exit hold: EDS carries the instances.
    const after = await eventually(async () => {
      const endpoints = await edsEndpoints(cluster);
      return !endpoints.includes(activator) && endpoints.length * maxConcurrency >= targetBurstCapacity && endpoints;
    }, 30_000);
    const instances = await managedInstances(world.stack, 'b1');
    expect(after.length).toBeLessThanOrEqual(instances.length);
    const answer = await world.http('burst.acme.test', '/');
    expect(answer.status).toBe(200);
    expect(answer.headers['x-switchyard-activator']).toBeUndefined();
  }, 120_000);
});
