import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoscalerLeader, killNatsNode, killService, sleep, worstRecovery, type Fault } from './faults.js';
import { serviceNames, SwitchyardSystem, type ServiceProcess } from './system.js';
import { BusAudit, scaledDomain, setUpServices, steadyDomain, Traffic, untilServing, Writer } from './workload.js';

/**
 * Issue 17, proven by failure: the whole system as processes (3 NATS nodes with everything at
 * 3 replicas, 2 replicas of each service, a real Envoy whose xDS, stats and HDS clusters list
 * both replicas), under continuous traffic and API writes. One replica of each service is
 * SIGKILLed in turn and started again, a NATS node too, and the autoscaler leader while a
 * service scales out under load. Then: no request to the static-backend service or to the
 * autoscaled one failed (the new leader adopts the killed one's instances), no
 * acknowledged write is missing, every endpoint set seen on the bus is in JetStream, every
 * service is ready without having been restarted by hand after the NATS node came back, and
 * Envoy is still connected to a control plane.
 */
describe('losing any one component', () => {
  let system: SwitchyardSystem;
  let backends: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    system = await SwitchyardSystem.start({ replicas: 2 });
    ({ backends } = await setUpServices(system));
    await untilServing(system, steadyDomain, 60_000);
    await untilServing(system, scaledDomain, 90_000);
  }, 240_000);

  afterAll(async () => {
    await system?.stop();
    for (const b of backends) await b.close();
  }, 60_000);

  it('keeps serving, loses no acknowledged write or endpoint set, and every service comes back by itself', async () => {
    const audit = await BusAudit.start(system);
    const steady = new Traffic(system, steadyDomain, 4, 20);
    const scaled = new Traffic(system, scaledDomain, 6, 300);
    const writer = new Writer(system, 1, 400);
    const faults: Fault[] = [];
    await sleep(3000);

    for (const service of serviceNames.filter((s) => s !== 'autoscaler')) {
      faults.push(await killService(system, system.replicasOf(service)[0] as ServiceProcess, 2000));
      await sleep(2000);
    }
    faults.push(await killNatsNode(system, 1, 3000));
    await sleep(2000);
    // The scaled service's load (6 requests of 300 ms against 2 per instance) makes it scale out; kill the leader meanwhile.
    const leader = await autoscalerLeader(system);
    expect(leader, 'an autoscaler leader').toBeDefined();
    faults.push(await killService(system, leader as ServiceProcess, 2000));
    await sleep(5000);

    await writer.stop();
    const steadyTally = await steady.stop();
    const scaledTally = await scaled.stop();
    const lostWrites = await writer.lost();
    const lostSets = await audit.lost();
    await audit.close();
    const connected = await system.envoy.stat('control_plane.connected_state');
    const report = {
      steady: { sent: steadyTally.sent, failed: steadyTally.failed },
      scaled: { sent: scaledTally.sent, failed: scaledTally.failed, firstErrors: scaledTally.errors.slice(0, 5) },
      writes: { attempted: writer.attempts, acknowledged: writer.acknowledged.length, lost: lostWrites.length },
      endpointSubjects: audit.subjects,
      steadyTransitions: audit.transitions.filter((t) => t.service === 'steady').map((t) => `${t.endpoint.port} ${t.previous}→${t.state}`),
      lostEndpointSets: lostSets,
      worstRecoveryMs: worstRecovery(faults),
      crashes: Object.fromEntries(system.services.map((s) => [s.name, s.crashes])),
    };
    console.log(JSON.stringify(report));
    expect(steadyTally.errors).toEqual([]);
    expect(steadyTally.sent).toBeGreaterThan(100);
    expect(scaledTally.errors).toEqual([]);
    expect(scaledTally.sent).toBeGreaterThan(50);
    expect(writer.acknowledged.length).toBeGreaterThan(10);
    expect(lostWrites).toEqual([]);
    expect(lostSets).toEqual([]);
    expect(audit.subjects).toBeGreaterThan(0);
    // The static backends never fail: however the event-streamer replicas died and moved, none of them was judged unhealthy.
    expect(audit.transitions.filter((t) => t.service === 'steady' && t.state === 'unhealthy')).toEqual([]);
    expect(connected).toBe(1);
    for (const service of system.services) expect(await service.ready(), `${service.name} ready`).toBe(true);
    await untilServing(system, steadyDomain, 10_000);
    await untilServing(system, scaledDomain, 60_000);
  }, 600_000);
});
