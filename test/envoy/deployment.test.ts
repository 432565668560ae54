import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streams, type DeploymentEvent } from '@switchyard/shared';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';
import { BusRecorder, LoadLoop, allServices, eventually, fastEnv, httpEchoCommand, managedInstances } from '../support/stack.js';

const servicePath = '/v1/tenants/acme/services/web';
type Deployment = { id: string; phase: string; message: string };

/**
 * Issue 10's deploy loop through a real Envoy: the deployment API → the autoscaler starts the
 * new revision (the HTTP demo, run by the local provider) → the control plane shifts Envoy's
 * weighted clusters → continuous HTTP load through Envoy follows without a failed request; a
 * canary whose instances answer 503 is rolled back by the 5xx ratio Envoy reported.
 */
describe('blue-green and canary deployments under HTTP load through Envoy', () => {
  let world: EnvoyWorld;
  let bus: BusRecorder;
  let load: LoadLoop | undefined;
  let deployEvents: DeploymentEvent[];

  const deployment = async () => (await world.api.ok('GET', `${servicePath}/deployment`)) as Deployment;
  const traffic = async () => ((await world.api.ok('GET', servicePath)).spec.traffic ?? []) as { revision: string; percent: number }[];
  const finished = () =>
    eventually(
      async () => {
        const d = await deployment();
        return ['completed', 'failed', 'rolled_back'].includes(d.phase) ? d : false;
      },
      45_000,
      200,
    );
  const deploy = (body: Record<string, unknown>) => world.api.ok('POST', `${servicePath}/deployments`, body) as Promise<Deployment>;

  beforeAll(async () => {
    world = await startEnvoyWorld({ services: allServices, env: fastEnv });
    bus = await BusRecorder.connect(world.nats);
    deployEvents = await bus.replay('deploy', streams.events.name, 'switchyard.deploy.acme.web');
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', servicePath, {
      domains: ['web.acme.test'],
      healthCheck: { protocol: 'http', path: '/healthz', interval: '1s', timeout: '500ms' },
      scaling: { minInstances: 1, maxInstances: 3, maxConcurrency: 20, targetUtilization: 1, stableWindow: '6s', panicWindow: '1s' },
      revisions: [{ name: 'blue', command: httpEchoCommand, env: { REVISION: 'blue' } }],
    });
    await eventually(async () => (await managedInstances(world.stack, 'blue')).some((i) => i.state === 'ready'), 20_000, 100);
    await world.until('web.acme.test', '/', (a) => a.status === 200);
    load = new LoadLoop(world.echoClient('web.acme.test'), 4, 50);
  }, 40_000);

  afterAll(async () => {
    await load?.stop();
    await bus?.close();
    await world?.stop();
  });

  it('deploys blue-green under load without a failed request, then drains the old revision', async () => {
    const startedAt = Date.now();
    const started = await deploy({
      revision: 'green',
      command: httpEchoCommand,
      env: { REVISION: 'green' },
      strategy: 'blue-green',
      bake: '2s',
    });
    const done = await finished();
    expect(done.phase, done.message).toBe('completed');
    expect(await traffic()).toEqual([{ revision: 'green', percent: 100 }]);
    load!.mark();
    await eventually(() => (load!.current.byRevision.get('green') ?? 0) >= 20, 10_000, 50);
    expect([...load!.current.byRevision.keys()]).toEqual(['green']);
    await eventually(async () => (await managedInstances(world.stack, 'blue')).length === 0, 20_000, 200);
    expect(load!.total.failed, load!.total.errors.join('\n')).toBe(0);
    expect(deployEvents.filter((e) => e.deploymentId === started.id).map((e) => e.phase)).toContain('shifting');
    console.log(JSON.stringify({ blueGreenMs: Date.now() - startedAt, requests: load!.total.ok }));
  }, 60_000);

  it('rolls a healthy canary forward step by step under load without a failed request', async () => {
    const before = load!.total.failed;
    load!.mark();
    const started = await deploy({
      revision: 'teal',
      command: httpEchoCommand,
      env: { REVISION: 'teal' },
      strategy: 'canary',
      steps: [50, 100],
      bake: '2s',
    });
    const done = await finished();
    expect(done.phase, done.message).toBe('completed');
    const during = load!.mark();
    // Envoy split the traffic while the canary baked at 50 %.
    expect(during.byRevision.get('teal') ?? 0).toBeGreaterThan(0);
    expect(during.byRevision.get('green') ?? 0).toBeGreaterThan(0);
    const shifts = deployEvents.filter((e) => e.deploymentId === started.id && e.phase === 'shifting').map((e) => e.traffic);
    expect(shifts[0]).toEqual([
      { revision: 'teal', percent: 50 },
      { revision: 'green', percent: 50 },
    ]);
    expect(await traffic()).toEqual([{ revision: 'teal', percent: 100 }]);
    expect(load!.total.failed - before, load!.total.errors.join('\n')).toBe(0);
  }, 60_000);

  it('rolls a canary answering 503 back by the 5xx ratio Envoy reported', async () => {
    const startedAt = Date.now();
    const started = await deploy({
      revision: 'red',
      command: httpEchoCommand,
      env: { REVISION: 'red', FAIL_RATE: '1' },
      strategy: 'canary',
      steps: [50, 100],
      bake: '20s',
      maxErrorRatio: 0.2,
    });
    const done = await finished();
    expect(done.phase, done.message).toBe('rolled_back');
    expect(done.message).toMatch(/error ratio/);
    console.log(JSON.stringify({ canaryRollbackMs: Date.now() - startedAt, message: done.message }));
    const rolledBack = await eventually(
      () => deployEvents.find((e) => e.deploymentId === started.id && e.phase === 'rolled_back') ?? false,
      5000,
    );
    expect(rolledBack.traffic).toEqual([{ revision: 'teal', percent: 100 }]);
    expect(rolledBack.errorRatio ?? 0).toBeGreaterThan(0.2);
    // The 5xx came from Envoy's own counts of the canary's cluster.
    expect(await world.envoy.stat('cluster.sy_acme_web_red.upstream_rq_5xx')).toBeGreaterThan(0);
    expect(load!.total.errors.some((e) => /HTTP 503/.test(e))).toBe(true);
    // Traffic is back on teal: requests succeed again, and red's instances are stopped.
    load!.mark();
    await eventually(() => load!.current.ok >= 20 && load!.mark().failed === 0, 10_000, 300);
    await eventually(async () => (await managedInstances(world.stack, 'red')).length === 0, 20_000, 200);
  }, 60_000);
});
