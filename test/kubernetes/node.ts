import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, makeInformer, type KubeConfig, type V1Pod, type V1Probe } from '@kubernetes/client-node';

/**
 * The test harness as the cluster's only node, the way kwok plays one: it registers a Node,
 * binds every unscheduled pod to it, runs each pod's container as a local process on a
 * loopback address of its own (127.1.x.y) and writes the pod's status as a kubelet would:
 * Running with its podIP, Ready once the readiness probe passes, Failed when the process exits.
 * Deleted pods have their process stopped and are then removed (grace period 0).
 */

const demo = (main: string) => fileURLToPath(new URL(`../../packages/demo/dist/src/${main}`, import.meta.url));

/** The images the harness can "pull": each maps to a command. */
export const images: Record<string, string[]> = {
  'registry.test/demo/http-echo:1': [process.execPath, demo('http-echo-main.js')],
  'registry.test/demo/grpc-echo:1': [process.execPath, demo('grpc-echo-main.js')],
};

interface Running {
  child: ChildProcess;
  ip: string;
  ready: boolean;
}

export class FakeNode {
  readonly name = 'switchyard-test-node';
  private readonly core: CoreV1Api;
  private readonly running = new Map<string, Running>();
  private nextIp = 1;
  private stopped = false;
  private informer: ReturnType<typeof makeInformer<V1Pod>> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.timer = setInterval(() => void this.probeAll(), 200);
  }

  async start(): Promise<void> {
    await this.core.createNode({ body: { metadata: { name: this.name }, spec: {} } });
    const informer = makeInformer<V1Pod>(this.kubeConfig, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
    informer.on('add', (pod) => void this.sync(pod));
    informer.on('update', (pod) => void this.sync(pod));
    informer.on('error', () => setTimeout(() => void informer.start(), 500));
    this.informer = informer;
    await informer.start();
  }

  /** Kills the process of a pod, as if its container crashed. */
  crash(pod: string): void {
    this.running.get(pod)?.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.informer?.stop();
    for (const r of this.running.values()) r.child.kill('SIGKILL');
  }

  private async sync(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name as string;
    const namespace = pod.metadata?.namespace as string;
    const key = `${namespace}/${name}`;
    if (this.stopped) return;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      const r = this.running.get(key);
      if (r !== undefined) {
        this.running.delete(key);
        r.child.kill('SIGTERM');
      }
      await this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
      return;
    }
    if (pod.spec?.nodeName === undefined) {
      await this.core
        .createNamespacedPodBinding({ name, namespace, body: { metadata: { name }, target: { kind: 'Node', name: this.name } } })
        .catch(() => undefined);
      return;
    }
    if (this.running.has(key) || pod.status?.phase === 'Running' || pod.status?.phase === 'Failed') return;
    this.launch(key, pod);
  }

  private launch(key: string, pod: V1Pod): void {
    const container = pod.spec?.containers[0];
    const command = images[container?.image ?? ''];
    const ip = `127.1.${Math.floor(this.nextIp / 250)}.${(this.nextIp % 250) + 1}`;
    this.nextIp++;
    if (command === undefined) {
      void this.writeStatus(pod, { phase: 'Failed', message: `image ${container?.image} cannot be pulled` });
      return;
    }
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    for (const e of container?.env ?? []) env[e.name] = e.value ?? '';
    env.HOST = ip;
    const [file, ...args] = command;
    const child = spawn(file as string, args, { env, stdio: 'ignore' });
    this.running.set(key, { child, ip, ready: false });
    child.once('exit', (code) => {
      if (this.running.get(key)?.child !== child) return;
      this.running.delete(key);
      void this.writeStatus(pod, { phase: 'Failed', message: `container exited with ${code ?? 'a signal'}` });
    });
    void this.writeStatus(pod, { phase: 'Running', podIP: ip, ready: false });
  }

  private async probeAll(): Promise<void> {
    for (const [key, r] of this.running) {
      if (r.ready) continue;
      const [namespace, name] = key.split('/') as [string, string];
      const pod = await this.core.readNamespacedPod({ name, namespace }).catch(() => undefined);
      const probe = pod?.spec?.containers[0]?.readinessProbe;
      if (pod === undefined || probe === undefined || !(await probeOnce(r.ip, probe))) continue;
      r.ready = true;
      await this.writeStatus(pod, { phase: 'Running', podIP: r.ip, ready: true });
    }
  }

  private async writeStatus(pod: V1Pod, status: { phase: string; podIP?: string; ready?: boolean; message?: string }): Promise<void> {
    const name = pod.metadata?.name as string;
    const namespace = pod.metadata?.namespace as string;
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.core.readNamespacedPod({ name, namespace }).catch(() => undefined);
      if (current === undefined || current.metadata?.deletionTimestamp !== undefined) return;
      const now = new Date();
      current.status = {
        phase: status.phase,
        hostIP: '127.0.0.1',
        ...(status.podIP === undefined ? {} : { podIP: status.podIP, podIPs: [{ ip: status.podIP }] }),
        ...(status.message === undefined ? {} : { message: status.message }),
        startTime: current.status?.startTime ?? now,
        conditions: [{ type: 'Ready', status: status.ready === true ? 'True' : 'False', lastTransitionTime: now }],
      };
      try {
        await this.core.replaceNamespacedPodStatus({ name, namespace, body: current });
        return;
      } catch {
        // A conflicting write: read again.
      }
    }
  }
}

function probeOnce(ip: string, probe: V1Probe): Promise<boolean> {
  const port = Number(probe.httpGet?.port ?? probe.tcpSocket?.port);
  return new Promise((resolve) => {
    if (probe.httpGet !== undefined) {
      const req = request({ host: ip, port, path: probe.httpGet.path ?? '/', timeout: 1000 }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
      return;
    }
    const socket = createConnection({ host: ip, port, timeout: 1000 }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => socket.destroy());
  });
}
