import { createHash, randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig, NetworkingV1Api, makeInformer, type Informer, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '@switchyard/shared';
import type { RevisionPlan } from '../revision-plans.js';
import type { InstanceProvider, InstanceState, InstanceView, RevisionHooks, RevisionInstances } from '../provider.js';
import {
  anchorName,
  namespaceName,
  podState,
  revisionAnchor,
  revisionPod,
  revisionSelector,
  specHashAnnotation,
  tenantNamespace,
  tenantNetworkPolicy,
  tenantResourceQuota,
  type KubeSettings,
} from './kube-objects.js';
import { pickScaleIn } from './scale-in.js';

/**
 * The `kubernetes` instance provider: a revision with an `image` runs as pods that this
 * provider creates and deletes itself (no Deployment, see docs/autoscaler.md), in its tenant's
 * namespace (created with a NetworkPolicy and a ResourceQuota). A pod watch per revision keeps
 * the instance list: a pod is `starting` until the kubelet reports it Ready with an IP, then
 * `ready`; a pod that fails or is deleted behind our back is replaced. Scale-in drains the
 * picked pod first (it stays in the endpoint set as `draining`) and deletes it afterwards.
 * Pod creations the API server refuses (e.g. the tenant's quota) are reported as `start_failed`
 * events and retried with exponential backoff.
 */

export interface KubernetesProviderOptions extends KubeSettings {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** How long a pod may take to become Ready before it is deleted and retried. */
  startTimeoutMs: number;
  backoff?: { initialMs: number; maxMs: number };
}

/** A kubeconfig from a file, or the in-cluster service account when none is given. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path === undefined) kc.loadFromCluster();
  else kc.loadFromFile(path);
  return kc;
}

export function kubernetesProvider(options: KubernetesProviderOptions): InstanceProvider {
  const clients = { core: options.kubeConfig.makeApiClient(CoreV1Api), net: options.kubeConfig.makeApiClient(NetworkingV1Api) };
  const tenants = new TenantNamespaces(options, clients);
  return {
    name: 'kubernetes',
    runs: ['image'],
    open: async (plan, hooks) => {
      const revision = new KubeRevision(options, clients, tenants, plan, hooks);
      // The pod watch lists the revision's existing pods before `setup` resolves: the first set includes them.
      await revision.setup.catch(() => undefined);
      return revision;
    },
  };
}

interface Clients {
  core: CoreV1Api;
  net: NetworkingV1Api;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? (err as ApiException<unknown>).code : undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof ApiException) {
    const body = (err as ApiException<unknown>).body;
    const parsed = typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string });
    return `${(err as ApiException<unknown>).code}: ${parsed?.message ?? String(body)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Creates an object, or leaves the existing one alone. */
async function ensure(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (statusOf(err) !== 409) throw err;
  }
}

/** Each tenant's namespace, NetworkPolicy and ResourceQuota, created once per process (again after a failure). */
class TenantNamespaces {
  private readonly ready = new Map<string, Promise<void>>();

  constructor(
    private readonly settings: KubeSettings,
    private readonly clients: Clients,
  ) {}

  ensure(tenant: string): Promise<void> {
    let done = this.ready.get(tenant);
    if (done === undefined) {
      done = this.create(tenant);
      this.ready.set(tenant, done);
      done.catch(() => this.ready.delete(tenant));
    }
    return done;
  }

  private async create(tenant: string): Promise<void> {
    const { core, net } = this.clients;
    const namespace = namespaceName(this.settings, tenant);
    await ensure(() => core.createNamespace({ body: tenantNamespace(this.settings, tenant) }));
    await ensure(() => net.createNamespacedNetworkPolicy({ namespace, body: tenantNetworkPolicy(this.settings, tenant) }));
    await ensure(() => core.createNamespacedResourceQuota({ namespace, body: tenantResourceQuota(this.settings, tenant) }));
  }
}

/** The launch settings a pod was made from: a pod whose hash differs is replaced. */
function specHash(plan: RevisionPlan): string {
  const { source, healthCheck } = plan;
  return createHash('sha256').update(JSON.stringify({ source, healthCheck })).digest('hex').slice(0, 16);
}

interface Member {
  pod: V1Pod;
  state: InstanceState | 'gone';
  draining: boolean;
  replace: boolean;
  deleting: boolean;
  startedAt: number;
}

class KubeRevision implements RevisionInstances {
  private readonly members = new Map<string, Member>();
  private readonly log: Logger;
  private readonly namespace: string;
  private readonly backoff: { initialMs: number; maxMs: number };
  private informer: Informer<V1Pod> | undefined;
  private anchorUid: string | undefined;
  readonly setup: Promise<void>;
  /** Pods asked for whose create call has not returned yet (the watch may already have reported them). */
  private readonly creating = new Set<string>();
  private target = 0;
  private hash: string;
  private failures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly timeoutTimer: NodeJS.Timeout;
  private closed = false;
  private released = false;

  constructor(
    private readonly options: KubernetesProviderOptions,
    private readonly clients: Clients,
    private readonly tenants: TenantNamespaces,
    private plan: RevisionPlan,
    private readonly hooks: RevisionHooks,
  ) {
    this.log = options.logger.child({ ...plan.ref });
    this.namespace = namespaceName(options, plan.ref.tenant);
    this.backoff = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.hash = specHash(plan);
    this.setup = this.start();
    this.timeoutTimer = setInterval(() => this.expireSlowStarts(), 1000);
  }

  scale(count: number): void {
    this.target = count;
    this.reconcile();
  }

  update(plan: RevisionPlan): void {
    this.plan = plan;
    const hash = specHash(plan);
    if (hash === this.hash) return;
    this.hash = hash;
    this.failures = 0;
    this.retryAt = 0;
    this.reconcile();
  }

  replace(instanceId: string): void {
    const m = this.members.get(instanceId);
    if (m === undefined || m.replace || m.draining || m.state === 'gone') return;
    m.replace = true;
    this.hooks.event(instanceId, 'replaced', 'a new pod starts; this one drains once it is ready');
    this.reconcile();
  }

  /** Pods not yet placed have no IP: they are no endpoint yet (an endpoint set needs an address), but count as being created. */
  instances(): InstanceView[] {
    const views: InstanceView[] = [];
    for (const [id, m] of this.members) {
      if (m.state === 'gone' || m.deleting || !m.pod.status?.podIP) continue;
      views.push(this.view(id, m));
    }
    return views;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.timeoutTimer);
    await this.setup.catch(() => undefined);
    this.reconcile();
    while ([...this.members.values()].some((m) => m.state !== 'gone')) await new Promise((r) => setTimeout(r, 200));
    const informer = this.informer;
    this.informer = undefined;
    await informer?.stop();
    try {
      await this.clients.core.deleteNamespacedConfigMap({ name: anchorName(this.plan.ref), namespace: this.namespace });
    } catch (err) {
      if (statusOf(err) !== 404) this.log.warn({ err: messageOf(err) }, 'could not delete the revision anchor');
    }
  }

  /** Leaves the pods to the next leader, whose pod watch finds them. */
  release(): void {
    this.released = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.timeoutTimer);
    const informer = this.informer;
    this.informer = undefined;
    void informer?.stop();
  }

  private view(id: string, m: Member): InstanceView {
    const state = m.draining ? 'draining' : (m.state as InstanceState);
    return { id, address: m.pod.status?.podIP ?? '', port: this.options.containerPort, state, startedAt: m.startedAt };
  }

  private async start(): Promise<void> {
    const { ref } = this.plan;
    try {
      await this.tenants.ensure(ref.tenant);
      this.anchorUid = await this.anchor();
      const selector = revisionSelector(ref);
      const informer = makeInformer<V1Pod>(
        this.options.kubeConfig,
        `/api/v1/namespaces/${this.namespace}/pods`,
        () => this.clients.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selector }),
        selector,
      );
      informer.on('add', (pod) => this.observe(pod));
      informer.on('update', (pod) => this.observe(pod));
      informer.on('delete', (pod) => this.forget(pod));
      informer.on('error', (err: unknown) => {
        // A watch stopped by close() stays stopped.
        if (this.informer !== informer) return;
        this.log.warn({ err: messageOf(err) }, 'pod watch failed; restarting');
        setTimeout(() => void informer.start().catch(() => undefined), 1000).unref();
      });
      this.informer = informer;
      await informer.start();
      if (this.released) await informer.stop();
    } catch (err) {
      this.hooks.event(ref.revision, 'start_failed', `could not set up the revision in namespace ${this.namespace}: ${messageOf(err)}`);
      throw err;
    }
    this.reconcile();
  }

  /** The revision's anchor ConfigMap (owner of its pods); its uid. */
  private async anchor(): Promise<string> {
    const { core } = this.clients;
    const source = this.plan.source;
    const image = source.kind === 'image' ? source.image : '';
    try {
      const created = await core.createNamespacedConfigMap({
        namespace: this.namespace,
        body: revisionAnchor(this.options, this.plan.ref, image),
      });
      return created.metadata?.uid ?? '';
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      const existing = await core.readNamespacedConfigMap({ name: anchorName(this.plan.ref), namespace: this.namespace });
      return existing.metadata?.uid ?? '';
    }
  }

  private observe(pod: V1Pod): void {
    const id = pod.metadata?.name;
    if (id === undefined) return;
    const state = podState(pod);
    const m = this.members.get(id);
    if (m === undefined) {
      this.members.set(id, { pod, state, draining: false, replace: false, deleting: false, startedAt: Date.now() });
      this.hooks.changed();
      this.reconcile();
      return;
    }
    const before = m.state;
    m.pod = pod;
    m.state = state;
    if (before === state) return;
    if (state === 'ready') {
      this.failures = 0;
      this.hooks.event(id, 'ready', `pod ${pod.status?.podIP ?? ''} ready after ${Date.now() - m.startedAt} ms`);
    } else if (state === 'gone' && !m.deleting) {
      const how = `pod ${pod.status?.phase ?? 'deleted'}${pod.status?.message ? `: ${pod.status.message}` : ''}`;
      if (before === 'starting') {
        this.hooks.event(id, 'start_failed', `${how} before becoming ready`);
        this.failed();
      } else this.hooks.event(id, 'exited', how);
      void this.deletePod(id);
    }
    this.hooks.changed();
    this.reconcile();
  }

  private forget(pod: V1Pod): void {
    const id = pod.metadata?.name;
    if (id === undefined) return;
    const m = this.members.get(id);
    this.members.delete(id);
    if (m !== undefined && !m.deleting && m.state !== 'gone') this.hooks.event(id, 'exited', 'pod deleted');
    else this.hooks.event(id, 'stopped', 'pod deleted');
    this.hooks.changed();
    this.reconcile();
  }

  private isCurrent(m: Member): boolean {
    return !m.replace && m.pod.metadata?.annotations?.[specHashAnnotation] === this.hash;
  }

  /** Moves the pods towards `target` serving pods of the current spec. */
  private reconcile(): void {
    if (this.anchorUid === undefined || this.released) return;
    const target = this.closed ? 0 : this.target;
    const entries = [...this.members.entries()].filter(([, m]) => !m.deleting && m.state !== 'gone');
    const serving = entries.filter(([, m]) => !m.draining);
    const current = serving.filter(([, m]) => this.isCurrent(m));
    const unseen = [...this.creating].filter((name) => !this.members.has(name)).length;
    let count = current.length + unseen;

    for (const [id, m] of entries) {
      if (count >= target) break;
      if (m.draining && this.isCurrent(m)) {
        m.draining = false;
        count++;
        this.hooks.event(id, 'ready', 'back in service before its drain finished');
        this.hooks.changed();
      }
    }

    if (count < target) this.createPods(target - count);
    if (count > target) {
      const candidates = current.map(([id, m]) => ({ ...this.view(id, m), member: m }));
      for (const c of pickScaleIn(candidates, count - target)) this.retire(c.id, c.member);
    }

    const readyCurrent = current.filter(([, m]) => m.state === 'ready').length;
    const stillNeeded = Math.max(0, target - readyCurrent);
    serving
      .filter(([, m]) => !this.isCurrent(m))
      .sort(([, a], [, b]) => (a.state === b.state ? a.startedAt - b.startedAt : a.state === 'ready' ? -1 : 1))
      .forEach(([id, m], i) => {
        if (m.state === 'starting' || i >= stillNeeded) this.retire(id, m);
      });
  }

  private createPods(n: number): void {
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.reconcile();
      }, wait);
      return;
    }
    for (let i = 0; i < n; i++) void this.createPod();
  }

  private async createPod(): Promise<void> {
    const { ref, source } = this.plan;
    if (source.kind !== 'image' || this.anchorUid === undefined) return;
    const name = `${ref.service}-${ref.revision}-${randomBytes(3).toString('hex')}`.slice(0, 253);
    const body = revisionPod(this.options, {
      ref,
      name,
      image: source.image,
      env: source.env,
      healthCheck: this.plan.healthCheck,
      specHash: this.hash,
      anchorUid: this.anchorUid,
    });
    this.creating.add(name);
    try {
      const pod = await this.clients.core.createNamespacedPod({ namespace: this.namespace, body });
      if (!this.members.has(name)) {
        this.members.set(name, { pod, state: podState(pod), draining: false, replace: false, deleting: false, startedAt: Date.now() });
      }
      this.hooks.event(name, 'starting', `pod ${this.namespace}/${name}, image ${source.image}`);
      this.hooks.changed();
    } catch (err) {
      this.hooks.event(name, 'start_failed', `could not create pod: ${messageOf(err)}`);
      this.failed();
    } finally {
      this.creating.delete(name);
      this.reconcile();
    }
  }

  private retire(id: string, m: Member): void {
    if (m.draining || m.deleting) return;
    if (m.state !== 'ready') {
      void this.deletePod(id);
      return;
    }
    m.draining = true;
    this.hooks.event(id, 'draining', '');
    this.hooks.changed();
    void this.hooks.drained(this.view(id, m)).then(() => {
      if (m.draining && !this.released) void this.deletePod(id);
    });
  }

  private async deletePod(id: string): Promise<void> {
    const m = this.members.get(id);
    if (m === undefined || m.deleting) return;
    m.deleting = true;
    this.hooks.changed();
    try {
      await this.clients.core.deleteNamespacedPod({ name: id, namespace: this.namespace });
    } catch (err) {
      if (statusOf(err) === 404) {
        m.state = 'gone';
        this.members.delete(id);
      } else {
        m.deleting = false;
        this.log.warn({ pod: id, err: messageOf(err) }, 'could not delete pod; retrying');
        setTimeout(() => this.reconcile(), 1000).unref();
      }
    }
  }

  private expireSlowStarts(): void {
    const deadline = Date.now() - this.options.startTimeoutMs;
    for (const [id, m] of this.members) {
      if (m.state === 'starting' && !m.deleting && m.startedAt < deadline) {
        this.hooks.event(id, 'start_failed', `not ready within ${this.options.startTimeoutMs} ms`);
        this.failed();
        void this.deletePod(id);
      }
    }
  }

  /** Counts a failed start and pushes the next attempt out: 1 s, 2 s, 4 s … up to the maximum. */
  private failed(): void {
    this.failures++;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.failures - 1));
    this.retryAt = Date.now() + delay;
    this.log.warn({ failures: this.failures, retryInMs: delay }, 'pod failed to start; backing off');
  }
}
