import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '@switchyard/shared/testing';
import { streams, type DeploymentEvent } from '@switchyard/shared';
import {
  Api,
  BusRecorder,
  LoadLoop,
  allServices,
  eventually,
  fastEnv,
  grpcEchoCommand,
  managedInstances,
  startStack,
  xdsEchoClient,
  type EchoClient,
  type Stack,
} from './support/stack.js';

const servicePath = '/v1/tenants/acme/services/web';

/**
 * Issue 7's safe deployments, end to end: the deployment API → the autoscaler starts the new
 * revision (the demo, run by the local provider) → the control plane shifts traffic once it
 * is ready → a `@grpc/grpc-js-xds` client under continuous load follows; a canary whose
 * instances fail every call is rolled back by its 5xx ratio (LRS → stats-sink → load samples).
 */
describe('blue-green and canary deployments under load', () => {
  let nats: NatsServer;
  let stack: Stack;
  let api: Api;
  let bus: BusRecorder;
  let client: EchoClient | undefined;
  let load: LoadLoop | undefined;
  let deployEvents: DeploymentEvent[];

  const deployment = async () => (await api.ok('GET', `${servicePath}/deployment`)) as { phase: string; message: string; id: string };
  const traffic = async () => ((await api.ok('GET', servicePath)).spec.traffic ?? []) as { revision: string; percent: number }[];

  beforeAll(async () => {
    nats = await NatsServer.start();
    stack = await startStack(nats, allServices, { env: fastEnv });
    api = new Api(stack.apiUrl);
    bus = await BusRecorder.connect(nats);
    deployEvents = await bus.replay('deploy', streams.events.name, 'switchyard.deploy.acme.web');
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', servicePath, {
      domains: ['web.acme.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '500ms' },
      scaling: { minInstances: 1, maxInstances: 3, maxConcurrency: 20, targetUtilization: 1, stableWindow: '6s', panicWindow: '1s' },
      revisions: [{ name: 'blue', command: grpcEchoCommand, env: { REVISION: 'blue' } }],
    });
    await eventually(async () => (await managedInstances(stack, 'blue')).some((i) => i.state === 'ready'), 20_000, 100);
    client = xdsEchoClient('web.acme.test', stack.grpcPort, 'deployment-client');
    expect((await client.say()).revision).toBe('blue');
    load = new LoadLoop(client, 4, 50);
  });

  afterAll(async () => {
    await load?.stop();
    client?.close();
    await bus?.close();
    await stack?.stop();
    await nats?.dispose();
  });

  it('deploys a new revision blue-green under load without a failed call, then drains the old one', async () => {
    const blueSets = bus.record('endpoints', 'switchyard.endpoints.acme.web.blue');
    const started = await api.ok('POST', `${servicePath}/deployments`, {
      revision: 'green',
      command: grpcEchoCommand,
      env: { REVISION: 'green' },
      strategy: 'blue-green',
      bake: '2s',
    });
    expect(started).toMatchObject({ revision: 'green', previousRevision: 'blue', phase: 'scaling' });
    const done = await eventually(
      async () => {
        const d = await deployment();
        return d.phase === 'completed' || d.phase === 'failed' || d.phase === 'rolled_back' ? d : false;
      },
      60_000,
      200,
    );
    expect(done.phase, done.message).toBe('completed');
    expect(await traffic()).toEqual([{ revision: 'green', percent: 100 }]);
    // The client follows: every call lands on green.
    load!.mark();
    await eventually(() => (load!.current.byRevision.get('green') ?? 0) >= 20, 10_000, 50);
    expect([...load!.current.byRevision.keys()]).toEqual(['green']);
    // The old revision is drained (published as draining, then an empty set) and stopped.
    await eventually(async () => (await managedInstances(stack, 'blue')).length === 0, 30_000, 200);
    await eventually(() => blueSets.at(-1)?.endpoints.length === 0, 5000);
    expect(blueSets.some((set) => set.endpoints.some((e) => e.state === 'draining'))).toBe(true);
    expect(load!.total.failed, load!.total.errors.join('\n')).toBe(0);
    // Every step was published on the deploy subject (JetStream stream SWITCHYARD_EVENTS).
    await eventually(() => deployEvents.some((e) => e.deploymentId === started.id && e.phase === 'completed'), 5000);
    const phases = deployEvents.filter((e) => e.deploymentId === started.id).map((e) => e.phase);
    expect(phases[0]).toBe('started');
    expect(phases).toContain('shifting');
    expect(phases.at(-1)).toBe('completed');
    const shifted = deployEvents.find((e) => e.deploymentId === started.id && e.phase === 'shifting');
    expect(shifted?.traffic).toEqual([{ revision: 'green', percent: 100 }]);
    expect(shifted?.healthyInstances).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('rolls a canary that fails its calls back by its 5xx ratio', async () => {
    const started = await api.ok('POST', `${servicePath}/deployments`, {
      revision: 'red',
      command: grpcEchoCommand,
      // Every call on the new revision fails with UNAVAILABLE.
      env: { REVISION: 'red', FAIL_RATE: '1' },
      strategy: 'canary',
      steps: [50, 100],
      bake: '20s',
      maxErrorRatio: 0.2,
    });
    expect(started).toMatchObject({ revision: 'red', previousRevision: 'green', strategy: 'canary' });
    const done = await eventually(
      async () => {
        const d = await deployment();
        return d.phase === 'completed' || d.phase === 'failed' || d.phase === 'rolled_back' ? d : false;
      },
      60_000,
      200,
    );
    expect(done.phase, done.message).toBe('rolled_back');
    expect(done.message).toMatch(/error ratio/);
    // It failed during the first canary step, with half of the traffic.
    const canary = deployEvents.find((e) => e.deploymentId === started.id && e.phase === 'shifting');
    expect(canary?.traffic).toEqual([
      { revision: 'red', percent: 50 },
      { revision: 'green', percent: 50 },
    ]);
    expect((await traffic()).filter((t) => t.percent > 0)).toEqual([{ revision: 'green', percent: 100 }]);
    // The canary did get its share (and failed it) before the rollback.
    expect(load!.total.errors.some((e) => /revision red failed on purpose/.test(e))).toBe(true);
    // Traffic is back on green: calls succeed again.
    await eventually(
      async () => {
        const replies = await Promise.all(Array.from({ length: 10 }, () => client!.say()));
        return replies.every((r) => r.revision === 'green');
      },
      10_000,
      100,
    );
    await eventually(async () => (await managedInstances(stack, 'red')).length === 0, 30_000, 200);
    await eventually(() => deployEvents.some((e) => e.deploymentId === started.id && e.phase === 'rolled_back'), 5000);
    const rolledBack = deployEvents.find((e) => e.deploymentId === started.id && e.phase === 'rolled_back');
    expect(rolledBack?.traffic).toEqual([{ revision: 'green', percent: 100 }]);
    expect(rolledBack?.errorRatio ?? 0).toBeGreaterThan(0.2);
  }, 120_000);

  it('fails a deployment of an image at once when the instance provider runs no images, naming what does', async () => {
    const started = await api.ok('POST', `${servicePath}/deployments`, { image: 'registry.example/web:2' });
    // Generated revision names are readable: the service's name and a sequence number.
    expect(started.revision).toMatch(/^web-\d{5}$/);
    const startedAt = Date.now();
    const done = await eventually(
      async () => {
        const d = await deployment();
        return d.phase === 'scaling' ? false : d;
      },
      10_000,
      100,
    );
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(done.phase).toBe('failed');
    expect(done.message).toContain(`revision ${started.revision} cannot start`);
    expect(done.message).toContain('no instance provider of this Switchyard runs images (local runs commands; static runs nothing)');
    expect((await traffic()).filter((t) => t.percent > 0)).toEqual([{ revision: 'green', percent: 100 }]);
  }, 30_000);
});
