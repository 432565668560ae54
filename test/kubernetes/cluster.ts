import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort } from '@switchyard/shared';

/**
 * A real control plane for the provider tests: etcd as the store, kube-apiserver and a
 * kube-controller-manager running the quota, service-account, garbage-collector and namespace
 * controllers, built by scripts/kube-binaries.sh from the Go module proxy. The client
 * administrator authenticates with a static token in system:masters, the autoscaler with a token
 * of the ServiceAccount deploy/kubernetes/autoscaler-rbac.yaml defines; no kubelet runs (node.ts).
 */

export interface Cluster {
  /** An administrator (system:masters). */
  kubeConfig: KubeConfig;
  server: string;
  stop(): Promise<void>;
}

export function kubeBinaries(): string {
  const built = spawnSync('./scripts/kube-binaries.sh', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (built.status !== 0) throw new Error('scripts/kube-binaries.sh failed (see its output above)');
  return built.stdout.trim().split('\n').at(-1) as string;
}

function run(file: string, args: string[], logs: string[]): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: Buffer) => {
    logs.push(chunk.toString());
    if (logs.length > 200) logs.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

async function waitFor(what: string, check: () => Promise<boolean>, logs: string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms:\n${logs.join('').slice(-4000)}`);
}

export async function startCluster(): Promise<Cluster> {
  const bin = kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-kube-'));
  const logs: string[] = [];
  const children: ChildProcess[] = [];
  const [etcdPort, peerPort, apiPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;

  children.push(
    run(
      `${bin}/etcd`,
      [
        `--data-dir=${dir}/etcd`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // A throwaway store on a busy machine: fsync latency would only slow every write.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      logs,
    ),
  );

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const token = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${token},switchyard-test,1,"system:masters"\n`);
  children.push(
    run(
      `${bin}/kube-apiserver`,
      [
        `--etcd-servers=${etcdUrl}`,
        '--storage-backend=etcd3',
        `--secure-port=${apiPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${dir}/certs`,
        `--token-auth-file=${dir}/tokens.csv`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${dir}/sa.key`,
        `--service-account-signing-key-file=${dir}/sa.key`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--enable-priority-and-fairness=false',
      ],
      logs,
    ),
  );

  const server = `https://127.0.0.1:${apiPort}`;
  const kubeConfig = kubeConfigFor(server, token);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await waitFor('kube-apiserver', async () => (await core.listNamespace()).items.length > 0, logs);

  writeFileSync(join(dir, 'kubeconfig'), kubeConfig.exportConfig());
  children.push(
    run(
      `${bin}/kube-controller-manager`,
      [
        `--kubeconfig=${dir}/kubeconfig`,
        '--controllers=resourcequota,serviceaccount,garbagecollector,namespace',
        '--leader-elect=false',
        '--secure-port=0',
        '--concurrent-resource-quota-syncs=2',
        '--resource-quota-sync-period=5s',
      ],
      logs,
    ),
  );
  await waitFor(
    'the default service account',
    async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })).metadata !== undefined,
    logs,
  );

  return {
    kubeConfig,
    server,
    async stop() {
      for (const child of children.reverse()) {
        child.kill('SIGTERM');
        await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function kubeConfigFor(server: string, token: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'test', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return kubeConfig;
}

/**
 * Applies deploy/kubernetes/autoscaler-rbac.yaml (in the `switchyard` namespace) and returns a
 * kubeconfig with a token of its ServiceAccount: the identity the autoscaler runs with.
 */
export async function autoscalerIdentity(cluster: Cluster): Promise<KubeConfig> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const objects = cluster.kubeConfig.makeApiClient(KubernetesObjectApi);
  await core.createNamespace({ body: { metadata: { name: 'switchyard', labels: { 'switchyard.io/system': 'true' } } } });
  const text = readFileSync(new URL('../../deploy/kubernetes/autoscaler-rbac.yaml', import.meta.url), 'utf8');
  for (const doc of parseAllDocuments(text)) {
    const object = doc.toJS() as KubernetesObject;
    if (object.kind === 'ServiceAccount') object.metadata = { ...object.metadata, namespace: 'switchyard' };
    await objects.create(object);
  }
  const request = await core.createNamespacedServiceAccountToken({
    name: 'switchyard-autoscaler',
    namespace: 'switchyard',
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  return kubeConfigFor(cluster.server, request.status?.token as string);
}
