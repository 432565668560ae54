import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { newBusPasswords } from '@switchyard/shared';
import { HdsProber } from '@switchyard/event-streamer/testing';
import {
  Api,
  BusRecorder,
  LoadLoop,
  allServices,
  eventually,
  fastEnv,
  grpcEchoCommand,
  managedInstances,
  refusedNatsOperations,
  startStack,
  xdsEchoClient,
  type EchoClient,
  type ManagedInstance,
  type Stack,
} from './support/stack.js';

/**
 * Issues 6 and 7's health loop, end to end: three HDS checkers (the project's HDS client,
 * probing over TCP as Envoy does) on the shared gRPC port, local instances of the gRPC demo,
 * and a `@grpc/grpc-js-xds` client. One instance stops accepting connections → its checkers
 * vote it unhealthy → a transition on `switchyard.health.…` → EDS marks it UNHEALTHY and the
 * client stops using it → after the grace period the autoscaler replaces it.
 */
describe('an instance failing its health checks is taken out of EDS and replaced', () => {
  let nats: NatsServer;
  let stack: Stack;
  let bus: BusRecorder;
  let chaosDir: string;
  let client: EchoClient | undefined;
  let load: LoadLoop | undefined;
  const probers: HdsProber[] = [];

  const ready = async () => (await managedInstances(stack, 'v1')).filter((i) => i.state === 'ready');

  beforeAll(async () => {
    // Every service connects as its own NATS identity, with the permissions bus-permissions.ts gives it.
    nats = await NatsServer.start({ passwords: newBusPasswords() });
    chaosDir = await mkdtemp(join(tmpdir(), 'switchyard-chaos-'));
    // Instances run as their tenant's own uid (when the tests run as root): they must be able to read it.
    await chmod(chaosDir, 0o755);
    stack = await startStack(nats, allServices, { env: fastEnv });
    bus = await BusRecorder.connect(nats);
    for (const node of ['checker-1', 'checker-2', 'checker-3']) {
      probers.push(new HdsProber(`127.0.0.1:${stack.grpcPort}`, { nodeId: node }));
    }
    const api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      // Two failed probes a second apart (a refused connection fails at once; a slow answer only after
      // a full second, so a busy machine does not fail the healthy one) mark an instance unhealthy; it is replaced when it
      // stays so for the grace period (long enough to see EDS take it out first).
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '1s', unhealthyThreshold: 2, gracePeriod: '4s' },
      scaling: { minInstances: 2, maxInstances: 4, maxConcurrency: 50, targetUtilization: 1, stableWindow: '6s', panicWindow: '1s' },
      revisions: [{ name: 'v1', command: grpcEchoCommand, env: { REVISION: 'v1', CHAOS_DIR: chaosDir } }],
    });
  });

  afterAll(async () => {
    await load?.stop();
    client?.close();
    for (const prober of probers) prober.close();
    await bus?.close();
    await stack?.stop();
    await nats?.dispose();
    if (chaosDir) await rm(chaosDir, { recursive: true, force: true });
  });

  it('marks the instance unhealthy, routes around it, and replaces it with a new ready instance', async () => {
    const transitions = bus.record('health', 'switchyard.health.acme.echo.v1');
    const original = await eventually(
      async () => {
        const serving = await ready();
        return serving.length === 2 ? serving : false;
      },
      30_000,
      100,
    );
    client = xdsEchoClient('echo.acme.test', stack.grpcPort, 'health-client');
    load = new LoadLoop(client, 4, 20);
    // Both instances serve, and every checker probes them (k = 3 of 3 checkers).
    await eventually(() => load!.current.byInstance.size === 2, 15_000, 50);
    await eventually(() => probers.every((p) => Object.keys(p.statuses()).length === 2), 15_000, 100);

    const [victim, survivor] = original as [ManagedInstance, ManagedInstance];
    const victimAddress = `127.0.0.1:${victim.port}`;
    const flaggedAt = Date.now();
    await writeFile(join(chaosDir, `${victim.port}.unhealthy`), '');

    const unhealthy = await eventually(
      () => transitions.find((t) => t.endpoint.port === victim.port && t.state === 'unhealthy') ?? false,
      15_000,
      50,
    );
    expect(unhealthy.votes.filter((v) => v.state === 'unhealthy').length).toBeGreaterThanOrEqual(2);
    // (A first probe of a just-started instance may fail before it settles; what matters is
    // that the victim's failure never takes the healthy survivor down.)
    expect(transitions.some((t) => t.endpoint.port === survivor.port && t.state === 'unhealthy' && t.ts >= flaggedAt)).toBe(false);

    // EDS health: the client stops sending to it while the instance is still up and not yet drained.
    load.mark();
    await eventually(
      () => {
        const tally = load!.mark();
        return tally.ok >= 20 && !tally.byInstance.has(victimAddress);
      },
      3000,
      300,
    );
    expect((await managedInstances(stack, 'v1')).find((i) => i.id === victim.id)?.state).toBe('ready');

    // After the grace period the autoscaler replaces it: a new ready instance on another port, the old one gone.
    const replaced = await eventually(
      async () => {
        const all = await managedInstances(stack, 'v1');
        const serving = all.filter((i) => i.state === 'ready');
        return serving.length === 2 && !all.some((i) => i.id === victim.id) ? serving : false;
      },
      30_000,
      100,
    );
    const fresh = replaced.find((i) => i.id !== survivor.id) as ManagedInstance;
    expect(fresh.port).not.toBe(victim.port);
    expect(replaced.some((i) => i.id === survivor.id)).toBe(true);
    // The client uses the new instance, never the replaced one.
    load.mark();
    await eventually(() => load!.current.byInstance.has(`127.0.0.1:${fresh.port}`), 15_000, 50);
    expect(load.current.byInstance.has(victimAddress)).toBe(false);
    const total = await load.stop();
    expect(total.failed, total.errors.join('\n')).toBe(0);
  }, 120_000);

  it('ran with NATS permissions enforced, and no service was refused anything it does', async () => {
    expect(nats.passwords).toBeDefined();
    expect(await refusedNatsOperations(stack)).toBe(0);
  });
});
