import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { newBusPasswords } from '@switchyard/shared';
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
 * Issues 5 and 7's scaling loop with every piece real: NATS, the four services in one host,
 * local instances of the gRPC echo demo, and a `@grpc/grpc-js-xds` client as the data plane.
 * Load held in flight by the client → LRS → stats-sink → load samples → autoscaler → new
 * instances → endpoint sets → EDS → the client spreads over them; then load falls → drain →
 * fewer instances, without a failed call.
 */
describe('autoscaling on request concurrency, end to end', () => {
  let nats: NatsServer;
  let stack: Stack;
  let api: Api;
  let bus: BusRecorder;
  let client: EchoClient | undefined;

  const instances = () => managedInstances(stack, 'v1');
  const ready = async () => (await instances()).filter((i) => i.state === 'ready');

  beforeAll(async () => {
    // Every service connects as its own NATS identity, with the permissions bus-permissions.ts gives it.
    nats = await NatsServer.start({ passwords: newBusPasswords() });
    stack = await startStack(nats, allServices, { env: fastEnv });
    api = new Api(stack.apiUrl);
    bus = await BusRecorder.connect(nats);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/echo', {
      domains: ['echo.acme.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '500ms' },
      // 4 calls per instance at full utilization; windows short enough for a test.
      scaling: {
        minInstances: 1,
        maxInstances: 4,
        maxConcurrency: 4,
        targetUtilization: 1,
        stableWindow: '6s',
        panicWindow: '1s',
      },
      revisions: [{ name: 'v1', command: grpcEchoCommand, env: { REVISION: 'v1' } }],
    });
  });

  afterAll(async () => {
    client?.close();
    await bus?.close();
    await stack?.stop();
    await nats?.dispose();
  });

  it('scales out under load, spreads the calls over the new instances, and scales in without a failed call', async () => {
    const decisions = bus.record('scale', 'switchyard.scale.acme.echo.v1');
    const endpointSets = bus.record('endpoints', 'switchyard.endpoints.acme.echo.v1');
    await eventually(async () => (await ready()).length === 1, 20_000, 100);
    client = xdsEchoClient('echo.acme.test', stack.grpcPort, 'autoscaling-client');
    expect((await client.say()).revision).toBe('v1');
    const first = (await ready())[0] as ManagedInstance;

    // 12 calls held in flight, 400 ms each: 3 instances' worth at 4 per instance.
    const load = new LoadLoop(client, 12, 400);
    await eventually(async () => (await ready()).length >= 3, 30_000, 200);
    expect(decisions.some((d) => d.desired >= 3 && d.stableConcurrency + d.panicConcurrency > 0)).toBe(true);
    // EDS brought the new instances to the client: replies come from more than the first one.
    load.mark();
    await eventually(() => load.current.byInstance.size >= 3 && load.current.byInstance.has(`127.0.0.1:${first.port}`), 15_000, 100);
    const peak = (await ready()).length;

    // Load falls to a trickle: one call at a time.
    load.setWorkers(1);
    load.mark();
    const scaledIn = await eventually(
      async () => {
        const now = await instances();
        const serving = now.filter((i) => i.state === 'ready');
        // Fewer instances serve, and the retired ones are gone (drained, then stopped).
        return serving.length < peak && now.every((i) => i.state === 'ready') ? serving : false;
      },
      40_000,
      200,
    );
    expect(scaledIn.length).toBeGreaterThanOrEqual(1);
    // Calls still reach the instances left after the drain.
    const afterDrain = load.mark();
    await eventually(() => load.current.ok >= 5, 10_000, 50);
    const total = await load.stop();

    expect(afterDrain.failed, afterDrain.errors.join('\n')).toBe(0);
    expect(total.failed, total.errors.join('\n')).toBe(0);
    expect(decisions.some((d) => d.desired < peak)).toBe(true);
    // The retired instances were published as draining (EDS DRAINING) before they stopped.
    const drained = endpointSets.flatMap((set) => set.endpoints.filter((e) => e.state === 'draining').map((e) => e.id));
    expect(new Set(drained).size).toBeGreaterThanOrEqual(peak - scaledIn.length);
    const survivors = new Set(scaledIn.map((i) => `127.0.0.1:${i.port}`));
    expect([...load.current.byInstance.keys()].every((instance) => survivors.has(instance))).toBe(true);
  }, 120_000);

  it('ran with NATS permissions enforced, and no service was refused anything it does', async () => {
    expect(nats.passwords).toBeDefined();
    expect(await refusedNatsOperations(stack)).toBe(0);
  });
});
