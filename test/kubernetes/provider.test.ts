import { writeFileSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '@switchyard/shared/testing';
import {
  Api,
  LoadLoop,
  adminToken,
  allServices,
  eventually,
  fastEnv,
  managedInstances,
  startStack,
  xdsEchoClient,
  type EchoClient,
  type Stack,
} from '../support/stack.js';
import { httpRequest, type EchoReply } from '@switchyard/demo';
import { startEnvoy } from '../envoy/support.js';
import { run as syctl } from '@switchyard/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { InstanceView, RevisionInstances } from '@switchyard/autoscaler';
import { kubernetesProvider } from '@switchyard/autoscaler/kubernetes';
import { createLogger, freePort, type HealthCheckSpec } from '@switchyard/shared';
import { autoscalerIdentity, startCluster, type Cluster } from './cluster.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { FakeNode } from './node.js';

/**
 * The kubernetes provider against a real kube-apiserver and kube-controller-manager (see
 * cluster.ts), with the harness playing the node (node.ts). Run by `pnpm test:kubernetes`.
 */

let cluster: Cluster;
let node: FakeNode;
let core: CoreV1Api;
let containerPort: number;
/** The autoscaler's least-RBAC identity from deploy/kubernetes. */
let autoscaler: KubeConfig;

beforeAll(async () => {
  cluster = await startCluster();
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  node = new FakeNode(cluster.kubeConfig);
  await node.start();
  containerPort = await freePort('127.0.0.1');
  autoscaler = await autoscalerIdentity(cluster);
}, 600_000);

afterAll(async () => {
  await node?.stop();
  await cluster?.stop();
});

const healthCheck: HealthCheckSpec = {
  protocol: 'http',
  path: '/',
  interval: 1000,
  timeout: 1000,
  healthyThreshold: 1,
  unhealthyThreshold: 3,
  gracePeriod: 0,
};

async function open(tenant: string, quotaPods = 10) {
  const events: { instance: string; event: string; detail: string }[] = [];
  const provider = kubernetesProvider({
    kubeConfig: autoscaler,
    logger: createLogger('kube-test', 'warn'),
    namespacePrefix: 'sy-',
    containerPort,
    pod: { cpu: '100m', memory: '64Mi' },
    quota: { pods: quotaPods, cpu: '4', memory: '4Gi' },
    startTimeoutMs: 60_000,
    backoff: { initialMs: 200, maxMs: 1000 },
  });
  const revision: RevisionInstances = await provider.open(
    {
      ref: { tenant, service: 'web', revision: 'blue' },
      source: { kind: 'image', image: 'registry.test/demo/http-echo:1', env: { GREETING: 'hi' } },
      scaling: undefined as never,
      healthCheck,
      trafficPercent: 100,
      deploying: false,
    },
    {
      changed: () => undefined,
      event: (instance, event, detail) => events.push({ instance, event, detail }),
      drained: () => new Promise((r) => setTimeout(r, 100)),
    },
  );
  return { revision, events };
}

async function until<T>(what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
    last = await get();
  }
  return last;
}

const ready = (r: RevisionInstances) => r.instances().filter((i) => i.state === 'ready');

function get(i: InstanceView): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: i.address, port: i.port, path: '/' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

async function pods(namespace: string, revision = 'blue'): Promise<string[]> {
  const list = await core.listNamespacedPod({ namespace, labelSelector: `switchyard.io/revision=${revision}` });
  return list.items.filter((p) => p.metadata?.deletionTimestamp === undefined).map((p) => p.metadata?.name as string);
}

describe('the kubernetes provider against a real API server', () => {
  it('runs an image revision as pods in the tenant namespace; ready pod IPs serve', async () => {
    const { revision, events } = await open('acme');
    revision.scale(2);
    const instances = await until(
      'two ready pods',
      () => ready(revision),
      (r) => r.length === 2,
    );
    expect(new Set(instances.map((i) => i.address)).size).toBe(2);
    // Exactly two pods were created and none deleted: a pod the watch reports before its create call returns is counted once.
    expect(events.filter((e) => e.event !== 'ready').map((e) => e.event)).toEqual(['starting', 'starting']);
    for (const i of instances) {
      expect(i.address).toMatch(/^127\.1\./);
      expect(await get(i)).toBe(200);
    }
    const net = cluster.kubeConfig.makeApiClient(NetworkingV1Api);
    expect(
      (await net.readNamespacedNetworkPolicy({ name: 'switchyard-tenant-isolation', namespace: 'sy-acme' })).spec?.policyTypes,
    ).toEqual(['Ingress', 'Egress']);
    const pod = await core.readNamespacedPod({ name: instances[0]?.id as string, namespace: 'sy-acme' });
    expect(pod.metadata?.labels).toMatchObject({ 'switchyard.io/tenant': 'acme', 'switchyard.io/service': 'web' });
    expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe('ConfigMap');
    // The provider ran as the least-RBAC ServiceAccount: it cannot read the tenant's Secrets.
    await expect(autoscaler.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'sy-acme' })).rejects.toMatchObject({ code: 403 });

    // Scale-in drains the newest ready pod first, then deletes it.
    revision.scale(1);
    await until(
      'one pod left',
      () => pods('sy-acme'),
      (p) => p.length === 1,
    );
    expect(ready(revision)).toHaveLength(1);

    // Closing (the service was deleted) removes the pods and the revision's anchor.
    await revision.close();
    expect(await pods('sy-acme')).toEqual([]);
    await expect(core.readNamespacedConfigMap({ name: 'web--blue', namespace: 'sy-acme' })).rejects.toMatchObject({ code: 404 });
  }, 180_000);

  it('replaces a pod whose container dies', async () => {
    const { revision, events } = await open('globex');
    revision.scale(1);
    const [first] = await until(
      'a ready pod',
      () => ready(revision),
      (r) => r.length === 1,
    );
    node.crash(`sy-globex/${first?.id}`);
    const [second] = await until(
      'a new ready pod',
      () => ready(revision),
      (r) => r.length === 1 && r[0]?.id !== first?.id,
    );
    expect(await get(second as InstanceView)).toBe(200);
    expect(events).toContainEqual(expect.objectContaining({ instance: first?.id, event: 'exited' }));
    await revision.close();
  }, 180_000);

  it("honours the tenant namespace's quota", async () => {
    const { revision, events } = await open('initech', 2);
    revision.scale(3);
    await until(
      'two ready pods',
      () => ready(revision),
      (r) => r.length === 2,
    );
    await until(
      'a refused pod',
      () => events,
      (e) => e.some((x) => x.event === 'start_failed' && /exceeded quota/.test(x.detail)),
    );
    expect(await pods('sy-initech')).toHaveLength(2);
    await revision.close();
  }, 180_000);
});

describe('the four services with INSTANCE_PROVIDER=kubernetes, end to end', () => {
  let nats: NatsServer;
  let stack: Stack;
  let api: Api;

  beforeAll(async () => {
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'switchyard-kubeconfig-')), 'config');
    writeFileSync(kubeconfig, autoscaler.exportConfig());
    nats = await NatsServer.start();
    stack = await startStack(nats, allServices, {
      env: {
        ...fastEnv,
        INSTANCE_PROVIDER: 'kubernetes',
        KUBECONFIG: kubeconfig,
        KUBERNETES_NAMESPACE_PREFIX: 'sy-',
        KUBERNETES_CONTAINER_PORT: String(await freePort('127.0.0.1')),
        KUBERNETES_POD_CPU: '100m',
        KUBERNETES_POD_MEMORY: '64Mi',
        SWITCHYARD_IMAGE_REGISTRIES: 'registry.test/',
      },
    });
    api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/umbrella', { domains: ['umbrella.test'] });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await nats?.dispose();
  });

  /** The revision's ready endpoints as the control plane holds them: what EDS is built from. */
  async function servedReady(service: string, revision: string): Promise<string[]> {
    const view = await api.ok('GET', `/v1/tenants/umbrella/services/${service}`);
    const status = (view.status.revisions as { name: string; endpoints: { address: string; port: number; state: string }[] }[]).find(
      (r) => r.name === revision,
    );
    return (status?.endpoints ?? []).filter((e) => e.state === 'ready').map((e) => `${e.address}:${e.port}`);
  }

  /** The first reply through a new client: its EDS may still be on its way when the control plane has the endpoints. */
  function firstReply(client: EchoClient): Promise<EchoReply> {
    return eventually(() => client.say(), 30_000, 200);
  }

  it('image revision → pods → ready endpoints → EDS → a grpc-js-xds client; delete removes the pods', async () => {
    await api.ok('PUT', '/v1/tenants/umbrella/services/echo', {
      domains: ['echo.umbrella.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '500ms' },
      scaling: { minInstances: 2, maxInstances: 2 },
      revisions: [{ name: 'blue', image: 'registry.test/demo/grpc-echo:1', env: { REVISION: 'blue' } }],
    });
    await eventually(async () => (await servedReady('echo', 'blue')).length === 2, 60_000, 200);
    const client = xdsEchoClient('echo.umbrella.test', stack.grpcPort, 'kube-client');
    try {
      const replies = [await firstReply(client)];
      for (let i = 0; i < 20; i++) replies.push(await client.say());
      expect(new Set(replies.map((r) => r.revision))).toEqual(new Set(['blue']));
      // Both pods serve: the client balances over the two pod IPs EDS carries.
      expect(new Set(replies.map((r) => r.instance.split(':')[0]))).toEqual(
        new Set((await servedReady('echo', 'blue')).map((e) => e.split(':')[0])),
      );
    } finally {
      client.close();
    }
    expect(await pods('sy-umbrella')).toHaveLength(2);

    const refused = await api.call('PUT', '/v1/tenants/umbrella/services/other', {
      domains: ['other.umbrella.test'],
      revisions: [{ name: 'blue', image: 'docker.io/library/nginx:1' }],
    });
    expect(refused.status).toBe(400);
    expect(refused.body.issues[0].field).toBe('revisions[0].image');

    expect((await api.call('DELETE', '/v1/tenants/umbrella/services/echo')).status).toBe(204);
    await eventually(async () => (await pods('sy-umbrella')).length === 0, 60_000, 200);
    await eventually(
      async () =>
        (await core.listNamespacedConfigMap({ namespace: 'sy-umbrella', labelSelector: 'switchyard.io/service=echo' })).items.length === 0,
      30_000,
      200,
    );
  }, 180_000);

  it('scales out and in under load with zero failed calls, pods drained before they are deleted', async () => {
    await api.ok('PUT', '/v1/tenants/umbrella/services/scaled', {
      domains: ['scaled.umbrella.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '500ms' },
      scaling: { minInstances: 1, maxInstances: 3, maxConcurrency: 4, targetUtilization: 1, stableWindow: '6s', panicWindow: '1s' },
      revisions: [{ name: 'green', image: 'registry.test/demo/grpc-echo:1', env: { REVISION: 'green' } }],
    });
    const ready = async () => (await managedInstances(stack, 'green')).filter((i) => i.state === 'ready');
    await eventually(async () => (await ready()).length === 1 && (await servedReady('scaled', 'green')).length === 1, 60_000, 200);
    const client = xdsEchoClient('scaled.umbrella.test', stack.grpcPort, 'kube-load-client');
    expect((await firstReply(client)).revision).toBe('green');
    const load = new LoadLoop(client, 12, 400);
    try {
      await eventually(async () => (await ready()).length === 3, 90_000, 200);
      await eventually(() => load.current.byInstance.size === 3, 30_000, 100);
      load.setWorkers(1);
      await eventually(async () => (await managedInstances(stack, 'green')).length === 1, 90_000, 200);
      const total = await load.stop();
      expect({ failed: total.failed, errors: total.errors.slice(0, 3) }).toEqual({ failed: 0, errors: [] });
      expect(total.ok).toBeGreaterThan(50);
    } finally {
      client.close();
    }
  }, 240_000);
  it('an HTTP image revision at zero pods, through a real Envoy: the activator holds the requests until pods are ready, none fails', async () => {
    const envoy = await startEnvoy(stack);
    try {
      await api.ok('PUT', '/v1/tenants/umbrella/services/cold', {
        domains: ['cold.umbrella.test'],
        healthCheck: { interval: '1s', timeout: '500ms' },
        retries: { attempts: 0 },
        scaling: { minInstances: 0, maxInstances: 3, maxConcurrency: 10, targetUtilization: 1 },
        revisions: [{ name: 'frozen', image: 'registry.test/demo/http-echo:1', env: { REVISION: 'frozen' } }],
      });
      // At zero pods, EDS sends the revision to the activator (127.0.0.1; pods are on 127.1.x.y).
      await eventually(async () => (await envoy.admin('/clusters')).text.includes('sy_umbrella_cold_frozen::127.0.0.1:'), 30_000, 200);
      expect(await pods('sy-umbrella', 'frozen')).toEqual([]);

      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          httpRequest(`http://127.0.0.1:${stack.envoyHttpPort}/`, { host: 'cold.umbrella.test', timeoutMs: 90_000 }),
        ),
      );
      expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body.slice(0, 120)}`)).toEqual([]);
      expect(answers.every((a) => a.body.includes('frozen'))).toBe(true);
      expect((await pods('sy-umbrella', 'frozen')).length).toBeGreaterThanOrEqual(2);
      // Once pods are ready, EDS carries their addresses and Envoy reaches them directly.
      await eventually(async () => /sy_umbrella_cold_frozen::127\.1\./.test((await envoy.admin('/clusters')).text), 30_000, 200);
      const direct = await httpRequest(`http://127.0.0.1:${stack.envoyHttpPort}/`, { host: 'cold.umbrella.test', timeoutMs: 30_000 });
      expect(direct.status).toBe(200);
    } finally {
      await envoy.stop();
    }
  }, 240_000);
  it('syctl deploy --image: the new revision runs as pods, takes the traffic, the old pods are drained and deleted', async () => {
    await api.ok('PUT', '/v1/tenants/umbrella/services/rolled', {
      domains: ['rolled.umbrella.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'tcp', interval: '1s', timeout: '500ms' },
      scaling: { minInstances: 1, maxInstances: 2 },
      revisions: [{ name: 'blue', image: 'registry.test/demo/grpc-echo:1', env: { REVISION: 'blue' } }],
    });
    await eventually(async () => (await servedReady('rolled', 'blue')).length === 1, 60_000, 200);
    const client = xdsEchoClient('rolled.umbrella.test', stack.grpcPort, 'kube-deploy-client');
    try {
      expect((await firstReply(client)).revision).toBe('blue');
      const output: string[] = [];
      const io = {
        stdout: (text: string) => void output.push(text),
        stderr: (text: string) => void output.push(text),
        env: { SWITCHYARD_API: stack.apiUrl, SWITCHYARD_TOKEN: adminToken, SWITCHYARD_TENANT: 'umbrella' },
        readFile: () => Promise.reject(new Error('no files here')),
      };
      const args = ['deploy', 'rolled', '--image', 'registry.test/demo/grpc-echo:1', '--revision', 'green', '--env', 'REVISION=green'];
      const code = await syctl([...args, '--strategy', 'blue-green', '--bake', '1s'], io);
      expect(code, output.join('')).toBe(0);
      expect(output.join('')).toMatch(/completed/);
      expect((await pods('sy-umbrella', 'green')).length).toBeGreaterThanOrEqual(1);
      await eventually(async () => (await client.say()).revision === 'green', 30_000, 200);
      await eventually(async () => (await pods('sy-umbrella', 'blue')).length === 0, 60_000, 200);
    } finally {
      client.close();
    }
  }, 240_000);
});
