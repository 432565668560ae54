import { describe, expect, it } from 'vitest';
import {
  containerEnv,
  describe as describeObject,
  generatorSources,
  loadKustomization,
  renderKustomization,
  restrictedProblems,
  schemaProblems,
  selects,
  unknownFieldProblems,
  workloads,
  type Container,
  type KubeObject,
  type Workload,
} from './kube.js';
import { checkServiceEnv, exists, isRecord, notYetWritten, peerFiles, readYaml, services, type ServiceName } from './support.js';

const kustomization = loadKustomization();
const rendering = renderKustomization();
const objects = rendering.objects;
const serviceNames = Object.keys(services) as ServiceName[];
const peerPaths = new Set<string>(Object.values(peerFiles));

interface ServiceObject extends KubeObject {
  spec: { type?: string; selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] };
}
interface Budget extends KubeObject {
  spec: { minAvailable?: number | string; maxUnavailable?: number | string; selector: { matchLabels: Record<string, string> } };
}

const servicesOfKind = objects.filter((o): o is ServiceObject => o.kind === 'Service');
const budgets = objects.filter((o): o is Budget => o.kind === 'PodDisruptionBudget');

/** The Deployment that runs a Switchyard service: the project's image with the service name as its first argument. */
function deploymentOf(service: ServiceName): { workload: Workload; container: Container } {
  for (const workload of workloads(objects)) {
    const container = workload.spec.template.spec.containers.find((c) => c.args?.[0] === service);
    if (container !== undefined) return { workload, container };
  }
  throw new Error(`no Deployment runs ${service}`);
}

describe('the kustomization (deploy/kustomization.yaml)', () => {
  it('lists resource files that exist', () => {
    expect(kustomization.resources.length).toBeGreaterThan(0);
    expect(kustomization.resources.filter((resource) => !exists(`deploy/${resource}`))).toEqual([]);
  });

  it('packs only files that exist or that other parts of the project are writing', (ctx) => {
    const missing = generatorSources(kustomization).filter((source) => !exists(source));
    expect(missing.filter((source) => !peerPaths.has(source))).toEqual([]);
    if (missing.length > 0) ctx.skip(missing.map(notYetWritten).join('; '));
  });

  it('renders with kubectl kustomize', async (ctx) => {
    if (!rendering.rendered) return ctx.skip(rendering.reason);
    expect(objects.map(describeObject)).toEqual(expect.arrayContaining(['Namespace/switchyard', 'ConfigMap/' + envoyBootstrapName()]));
    for (const object of objects)
      if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(object.kind))
        expect(object.metadata.namespace, describeObject(object)).toBe('switchyard');
    if (rendering.placeholders.length > 0) {
      await ctx.annotate(
        `rendered with placeholders for ${rendering.placeholders.join(', ')} (${rendering.placeholders.map(notYetWritten).join('; ')})`,
      );
    }
  });
});

function envoyBootstrapName(): string {
  const generated = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('envoy-bootstrap'));
  return generated?.metadata.name ?? 'envoy-bootstrap';
}

describe('every Kubernetes object', () => {
  it.each(objects.map((object) => [describeObject(object), object] as const))('%s matches its Kubernetes schema', async (_, object) => {
    expect(await schemaProblems(object)).toEqual([]);
  });

  it('has only fields the Kubernetes API knows', () => {
    expect(unknownFieldProblems(objects)).toEqual([]);
  }, 60_000);

  it('lives in a namespace that enforces the restricted Pod Security Standard', () => {
    const namespace = objects.find((o) => o.kind === 'Namespace');
    expect(namespace?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it.each(workloads(objects).map((w) => [describeObject(w), w] as const))(
    '%s runs non-root with a read-only root filesystem, no capabilities and seccomp RuntimeDefault',
    (_, workload) => {
      expect(restrictedProblems(workload.spec.template.spec)).toEqual([]);
    },
  );

  it.each(workloads(objects).map((w) => [describeObject(w), w] as const))(
    '%s has requests and a memory limit, probes and a budget',
    (_, workload) => {
      for (const container of workload.spec.template.spec.containers) {
        expect(container.resources?.requests?.cpu, container.name).toBeDefined();
        expect(container.resources?.requests?.memory, container.name).toBeDefined();
        expect(container.resources?.limits?.memory, container.name).toBeDefined();
        expect(container.readinessProbe, container.name).toBeDefined();
        expect(container.livenessProbe, container.name).toBeDefined();
      }
      const covering = budgets.filter((b) => selects(b.spec.selector.matchLabels, workload.spec.template.metadata.labels));
      expect(covering.map(describeObject)).toHaveLength(1);
    },
  );

  const replicated = workloads(objects).filter((w) => (w.spec.replicas ?? 1) >= 2);
  it.each(replicated.map((w) => [describeObject(w), w] as const))(
    '%s spreads its replicas over nodes and keeps one up through disruptions',
    (_, workload) => {
      const terms = workload.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      const spreading = terms.filter(
        (t) =>
          t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
          selects(t.podAffinityTerm.labelSelector?.matchLabels ?? {}, workload.spec.template.metadata.labels),
      );
      expect(spreading).toHaveLength(1);
      const budget = budgets.find((b) => selects(b.spec.selector.matchLabels, workload.spec.template.metadata.labels));
      expect(Number(budget?.spec.minAvailable ?? 0)).toBeGreaterThanOrEqual(1);
      expect(Number(budget?.spec.minAvailable)).toBeLessThan(workload.spec.replicas ?? 1);
    },
  );

  it('runs two or more replicas of every service that shares its work across replicas', () => {
    const single = serviceNames.filter((name) => (deploymentOf(name).workload.spec.replicas ?? 1) < 2);
    expect(single).toEqual([]);
    expect(containerEnv(deploymentOf('stats-sink').container).STATS_SINK_REPLICATED).toBe('true');
    expect(containerEnv(deploymentOf('event-streamer').container).EVENT_STREAMER_REPLICATED).toBe('true');
  });

  it('selects its pods with labels the pods carry', () => {
    for (const workload of workloads(objects)) {
      expect(selects(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels), describeObject(workload)).toBe(true);
    }
    for (const budget of budgets) {
      const matched = workloads(objects).filter((w) => selects(budget.spec.selector.matchLabels, w.spec.template.metadata.labels));
      expect(matched, describeObject(budget)).toHaveLength(1);
    }
  });

  it('Service routes to named container ports of exactly one workload', () => {
    for (const service of servicesOfKind) {
      const matched = workloads(objects).filter((w) => selects(service.spec.selector, w.spec.template.metadata.labels));
      expect(matched.map(describeObject), describeObject(service)).toHaveLength(1);
      const portNames = new Set(matched[0]?.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const port of service.spec.ports)
        expect(portNames.has(String(port.targetPort)), `${describeObject(service)} ${port.name}`).toBe(true);
    }
  });

  it('mounts only ConfigMaps the kustomization generates', (ctx) => {
    if (!rendering.rendered) ctx.skip(rendering.reason);
    const configMaps = new Set(objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
    for (const workload of workloads(objects)) {
      for (const volume of workload.spec.template.spec.volumes ?? []) {
        const ref = volume.configMap as { name: string } | undefined;
        if (ref !== undefined) expect(configMaps.has(ref.name), `${describeObject(workload)} volume ${String(volume.name)}`).toBe(true);
      }
    }
  });
});

describe.each(serviceNames)('the %s Deployment', (service) => {
  const { workload, container } = deploymentOf(service);
  const pod = workload.spec.template.spec;
  const env = containerEnv(container);
  const check = checkServiceEnv(service, env);

  it('runs the project image', () => {
    const image = kustomization.images.find((i) => i.name === 'switchyard');
    expect(image).toBeDefined();
    const expected = rendering.rendered ? `${image?.newName ?? 'switchyard'}:${image?.newTag ?? 'latest'}` : 'switchyard';
    expect(container.image).toBe(expected);
  });

  it('sets only variables the service reads, and they parse with its loadConfig', () => {
    expect(check.problems).toEqual([]);
  });

  it('declares the ports its configuration listens on', () => {
    const declared = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(declared).toEqual(check.ports);
  });

  it('is ready on /readyz and alive on /healthz of its admin port', () => {
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
  });

  it('gets no service links (their *_PORT variables would sit beside its own port settings) and no API token unless it runs pods', () => {
    expect(pod.enableServiceLinks).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(service === 'autoscaler');
  });

  it('takes the admin token from the switchyard-admin Secret, never from a literal', () => {
    const entry = container.env?.find((e) => e.name === 'SWITCHYARD_ADMIN_TOKEN');
    if (!('SWITCHYARD_ADMIN_TOKEN' in services[service].schema.shape)) {
      expect(entry).toBeUndefined();
      return;
    }
    expect(entry?.valueFrom?.secretKeyRef).toEqual({ name: 'switchyard-admin', key: 'token' });
  });

  it('reaches NATS at the Helm release of deploy/kubernetes/nats-values.yaml', () => {
    expect(env.NATS_URL).toBe('nats://nats.nats.svc:4222');
  });

  it('connects to NATS as its own identity, with its password from the switchyard-nats Secret', () => {
    expect(container.env?.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: 'switchyard-nats',
      key: service,
    });
    expect(env.NATS_USER).toBeUndefined();
  });
});

describe('the Services', () => {
  it.each(['control-plane', 'stats-sink', 'event-streamer'] as const)('%s is reachable by name on its gRPC and admin ports', (service) => {
    const { container } = deploymentOf(service);
    const { ports } = checkServiceEnv(service, containerEnv(container));
    const object = servicesOfKind.find((s) => s.metadata.name === service);
    expect(object?.spec.ports.find((p) => p.name === 'grpc')?.port).toBe(ports.grpc);
    expect(object?.spec.ports.find((p) => p.name === 'admin')?.port).toBe(ports.admin);
  });

  it('expose the Envoy fleet through a LoadBalancer on 80 and 443', () => {
    const envoy = servicesOfKind.find((s) => s.metadata.name === 'envoy');
    expect(envoy?.spec.type).toBe('LoadBalancer');
    expect(envoy?.spec.ports.map((p) => p.port).sort()).toEqual([443, 80].sort());
  });
});

describe('the autoscaler Deployment', () => {
  const { workload, container } = deploymentOf('autoscaler');
  const { config } = checkServiceEnv('autoscaler', containerEnv(container));

  it('chooses its instance provider explicitly', () => {
    expect(containerEnv(container).INSTANCE_PROVIDER).toBe('kubernetes');
  });

  it('runs pods through its own ServiceAccount, whose role can create and delete pods but update nothing', () => {
    expect((workload.spec.template.spec as { serviceAccountName?: string }).serviceAccountName).toBe('switchyard-autoscaler');
    const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'switchyard-autoscaler') as
      (KubeObject & { rules: { resources: string[]; verbs: string[] }[] }) | undefined;
    const verbs = role?.rules.flatMap((r) => r.verbs) ?? [];
    expect(role?.rules.find((r) => r.resources.includes('pods'))?.verbs).toEqual(['get', 'list', 'watch', 'create', 'delete']);
    expect(verbs.filter((v) => v === 'update' || v === 'patch' || v === '*')).toEqual([]);
  });

  it('outlasts its drain timeout when the pod stops', () => {
    const grace = (workload.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    expect(grace).toBeGreaterThan(config?.DRAIN_TIMEOUT_MS as number);
  });

  it('runs two replicas behind a lease', () => {
    expect(workload.spec.replicas).toBe(2);
  });
});

describe('the Envoy Deployment', () => {
  const envoy = workloads(objects).find((w) => w.metadata.name === 'envoy') as Workload;
  const container = envoy.spec.template.spec.containers[0] as Container;

  it('runs the official Envoy image at a pinned version', () => {
    expect(container.image).toMatch(/^envoyproxy\/envoy:v\d+\.\d+\.\d+$/);
  });

  it('reads its bootstrap from the generated ConfigMap', () => {
    const args = container.args ?? [];
    const configPath = args[args.indexOf('-c') + 1] as string;
    const volume = envoy.spec.template.spec.volumes?.find(
      (v) => isRecord(v.configMap) && String(v.configMap.name).startsWith('envoy-bootstrap'),
    );
    expect(volume).toBeDefined();
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    expect(configPath).toBe(`${mount?.mountPath}/bootstrap.yaml`);
  });

  it('gives each pod its own xDS node id', () => {
    const args = container.args ?? [];
    expect(args[args.indexOf('--service-node') + 1]).toBe('$(POD_NAME)');
    expect(container.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef).toEqual({ fieldPath: 'metadata.name' });
  });
});

describe('the NATS Helm values (deploy/kubernetes/nats-values.yaml)', () => {
  const values = readYaml('deploy/kubernetes/nats-values.yaml') as {
    config: {
      cluster: { enabled: boolean; replicas: number };
      jetstream: { enabled: boolean; fileStore: { enabled: boolean; pvc: { enabled: boolean } }; merge: Record<string, unknown> };
    };
    container: { image: { tag: string } };
  };

  it('run three clustered servers', () => {
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
  });

  it('keep JetStream on persistent file storage and fsync every write', () => {
    expect(values.config.jetstream.enabled).toBe(true);
    expect(values.config.jetstream.fileStore).toMatchObject({ enabled: true, pvc: { enabled: true } });
    expect(values.config.jetstream.merge.sync_interval).toBe('always');
  });

  it('pin nats-server 2.12.3 or later', () => {
    const [major, minor, patch] = (/^(\d+)\.(\d+)\.(\d+)/.exec(values.container.image.tag) ?? []).slice(1).map(Number);
    expect(major).toBe(2);
    expect((minor as number) * 1000 + (patch as number)).toBeGreaterThanOrEqual(12_003);
  });
});
