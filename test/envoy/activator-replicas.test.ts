import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@switchyard/local';
import { freePort } from '@switchyard/shared';
import type { HttpAnswer } from '@switchyard/demo';
import { autoscaler, controlPlane, eventStreamer, eventually, fastEnv, httpEchoCommand, statsSink } from '../support/stack.js';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';

/** One standalone activator process (`services/activator/dist/src/main.js`), as a replica runs in a cluster. */
interface Replica {
  name: string;
  port: number;
  adminPort: number;
  child: ChildProcess;
}

async function startReplica(name: string, port: number, natsUrl: string): Promise<Replica> {
  const adminPort = await freePort();
  const child = spawn(process.execPath, [join(repoRoot(), 'services/activator/dist/src/main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      NATS_URL: natsUrl,
      ACTIVATOR_PORT: String(port),
      ACTIVATOR_ADMIN_PORT: String(adminPort),
      ACTIVATOR_REPLICA_ID: name,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { name, port, adminPort, child };
}

/** Requests a replica holds now, from its admin API. */
async function heldBy(replica: Replica): Promise<number> {
  const answer = (await (await fetch(`http://127.0.0.1:${replica.adminPort}/v1/activator`)).json()) as { held: { held: number }[] };
  return answer.held.reduce((sum, r) => sum + r.held, 0);
}

/**
 * Two activator replicas behind a real Envoy (EDS lists both for a revision at zero), one
 * SIGKILLed while both hold part of a burst: only the requests it held fail, and they fail at
 * once (its connections close, Envoy answers 503), long before the instance is ready; the
 * other replica's requests are all answered by the instance.
 */
describe('an activator replica killed mid-burst', () => {
  let world: EnvoyWorld;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort()];
    world = await startEnvoyWorld({
      services: [controlPlane, statsSink, eventStreamer, autoscaler],
      env: { ...fastEnv, ACTIVATOR_ADDRESS: ports.map((p) => `127.0.0.1:${p}`).join(',') },
    });
    replicas = await Promise.all(['activator-a', 'activator-b'].map((name, i) => startReplica(name, ports[i]!, world.nats.url)));
    await Promise.all(replicas.map((r) => eventually(async () => (await heldBy(r)) === 0, 30_000, 200)));
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
  }, 90_000);
  afterAll(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    await world?.stop();
  });

  it('loses only the requests it held, and they fail fast', async () => {
    await world.api.ok('PUT', '/v1/tenants/acme/services/pair', {
      domains: ['pair.acme.test'],
      healthCheck: { interval: '1s', timeout: '500ms' },
      retries: { attempts: 0 },
      scaling: { minInstances: 0, maxInstances: 4, maxConcurrency: 10, targetUtilization: 1 },
      // Slow to start: the burst is held long enough to kill a replica while it holds its part.
      revisions: [{ name: 'v1', command: httpEchoCommand, env: { REVISION: 'v1', START_DELAY_MS: '6000' } }],
    });
    await eventually(async () => {
      const clusters = (await world.envoy.admin('/clusters')).text;
      return replicas.every((r) => clusters.includes(`sy_acme_pair_v1::127.0.0.1:${r.port}::`));
    }, 20_000);

    const answered: { answer: HttpAnswer; at: number }[] = [];
    const burst = Promise.all(
      Array.from({ length: 40 }, async () => {
        const answer = await world.http('pair.acme.test', '/', { timeoutMs: 60_000 });
        answered.push({ answer, at: Date.now() });
      }),
    );
    const [victim, survivor] = replicas as [Replica, Replica];
    const held = await eventually(
      async () => {
        const counts = await Promise.all(replicas.map(heldBy));
        return counts[0]! + counts[1]! === 40 && counts[0]! > 0 && counts[1]! > 0 ? counts : false;
      },
      20_000,
      50,
    );
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await burst;

    const failed = answered.filter((a) => a.answer.status !== 200);
    const served = answered.filter((a) => a.answer.status === 200);
    expect(failed).toHaveLength(held[0]);
    expect(served).toHaveLength(held[1]);
    expect(served.every((a) => a.answer.body.includes('v1'))).toBe(true);
    expect(failed.every((a) => a.answer.status === 503)).toBe(true);
    // Fail fast: every lost request was answered before the instance was ready to serve the rest
    // (it starts in 6 s), not when some timeout ran out.
    const lastFailure = Math.max(...failed.map((a) => a.at));
    const firstServed = Math.min(...served.map((a) => a.at));
    expect(lastFailure).toBeLessThan(firstServed);
    console.log(
      JSON.stringify({
        heldByKilled: held[0],
        heldBySurvivor: held[1],
        lastFailureAfterKillMs: lastFailure - killedAt,
        firstServedAfterKillMs: firstServed - killedAt,
      }),
    );
    expect(await heldBy(survivor)).toBe(0);
  }, 120_000);
});
