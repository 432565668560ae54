#!/usr/bin/env node
/**
 * `pnpm chaos`: a bounded run of the whole system (3 NATS nodes, 2 replicas of each service, a
 * real Envoy) under continuous traffic through Envoy, API writes and a canary deployment in
 * progress, SIGKILLing a random component every few seconds and starting it again. One fault
 * at a time: the next waits until the last has recovered, so a quorum of NATS nodes and one
 * replica of each service stay up, which is what the system promises to survive. Envoy itself
 * is not killed: it is the data plane the traffic measures.
 *
 * Prints one JSON line at the end. Settings: CHAOS_DURATION_MS (180000), CHAOS_EVERY_MS (6000),
 * CHAOS_SEED (random), KEEP_LOGS (keep the processes' logs, named in the output).
 */
import { Api, httpEchoCommand } from '../support/stack.js';
import { killNatsNode, killService, sleep, worstRecovery, type Fault } from './faults.js';
import { SwitchyardSystem } from './system.js';
import { BusAudit, scaledDomain, setUpServices, steadyDomain, tenant, Traffic, untilServing, Writer } from './workload.js';

const durationMs = Number(process.env.CHAOS_DURATION_MS ?? 180_000);
const everyMs = Number(process.env.CHAOS_EVERY_MS ?? 6000);
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** A small seeded generator (mulberry32), so a run can be repeated with its seed. */
function random(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main(): Promise<void> {
  const next = random(seed);
  const startedAt = Date.now();
  const system = await SwitchyardSystem.start({ replicas: 2 });
  const { backends } = await setUpServices(system);
  await untilServing(system, steadyDomain, 60_000);
  await untilServing(system, scaledDomain, 90_000);
  const audit = await BusAudit.start(system);
  const steady = new Traffic(system, steadyDomain, 4, 20);
  const scaled = new Traffic(system, scaledDomain, 4, 200);
  const writer = new Writer(system, 1, 500);
  const deployment = await new Api(system.apiUrls[0] as string).call('POST', `/v1/tenants/${tenant}/services/scaled/deployments`, {
    revision: 'v2',
    command: httpEchoCommand,
    env: { REVISION: 'v2' },
    strategy: 'canary',
    steps: [25, 50, 100],
    bake: '20s',
  });
  const components = [
    ...system.services.map((s) => ({ name: s.name, nats: undefined })),
    ...[0, 1, 2].map((i) => ({ name: `nats-${i + 1}`, nats: i })),
  ];
  const faults: Fault[] = [];
  const failures: string[] = [];
  const chaosStartedAt = Date.now();
  while (Date.now() - chaosStartedAt < durationMs) {
    const tickAt = Date.now();
    const victim = components[Math.floor(next() * components.length)] as (typeof components)[number];
    const downMs = 500 + Math.floor(next() * 2500);
    try {
      if (victim.nats !== undefined) faults.push(await killNatsNode(system, victim.nats, downMs));
      else
        faults.push(
          await killService(
            system,
            system.services.find((s) => s.name === victim.name)!,
            downMs,
          ),
        );
    } catch (err) {
      failures.push(`${victim.name}: ${String((err as Error).message ?? err)}`);
    }
    await sleep(Math.max(0, everyMs - (Date.now() - tickAt)));
  }
  await writer.stop();
  const steadyTally = await steady.stop();
  const scaledTally = await scaled.stop();
  const lostWrites = await writer.lost();
  const lostSets = await audit.lost();
  await audit.close();
  const finalDeployment = await new Api(system.apiUrls[0] as string)
    .call('GET', `/v1/tenants/${tenant}/services/scaled/deployment`)
    .catch(() => undefined);
  await system.stop();
  for (const b of backends) await b.close();
  console.log(
    JSON.stringify({
      seed,
      durationMs: Date.now() - startedAt,
      faults: faults.length,
      notRecovered: failures,
      requests: { sent: steadyTally.sent + scaledTally.sent, failed: steadyTally.failed + scaledTally.failed },
      staticBackends: { sent: steadyTally.sent, failed: steadyTally.failed, firstErrors: steadyTally.errors.slice(0, 3) },
      managedInstances: { sent: scaledTally.sent, failed: scaledTally.failed, firstErrors: scaledTally.errors.slice(0, 3) },
      writes: { attempted: writer.attempts, acknowledged: writer.acknowledged.length, lost: lostWrites.length },
      endpointSets: { subjects: audit.subjects, lost: lostSets.length },
      deployment: { started: deployment.status, phase: finalDeployment?.body?.phase ?? null },
      worstRecoveryMs: worstRecovery(faults),
      crashes: Object.fromEntries(system.services.filter((s) => s.crashes > 0).map((s) => [s.name, s.crashes])),
      // Local instances the autoscalers left behind at the final stop (0 unless one was killed while stopping).
      leftoverInstances: system.leftoverInstances,
      ...(process.env.KEEP_LOGS === undefined ? {} : { logs: system.logDir }),
    }),
  );
}

await main();
