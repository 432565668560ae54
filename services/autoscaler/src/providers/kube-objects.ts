import type { V1ConfigMap, V1Namespace, V1NetworkPolicy, V1Pod, V1Probe, V1ResourceQuota } from '@kubernetes/client-node';
import type { HealthCheckSpec, RevisionRef } from '@switchyard/shared';
import type { InstanceState } from '../provider.js';

/**
 * The Kubernetes objects the `kubernetes` provider writes, built without I/O: a namespace per
 * tenant with its NetworkPolicy and ResourceQuota, a ConfigMap anchoring each revision (the
 * owner of its pods, so deleting it collects them), and the revision's pods.
 */

export const labels = {
  tenant: 'switchyard.io/tenant',
  service: 'switchyard.io/service',
  revision: 'switchyard.io/revision',
  managedBy: 'app.kubernetes.io/managed-by',
  /** On namespaces Switchyard's own services run in. */
  system: 'switchyard.io/system',
  /** On pods of the edge Envoy fleet: the only ones outside a tenant that may reach its pods. */
  edge: 'switchyard.io/edge',
} as const;

export interface KubeSettings {
  namespacePrefix: string;
  /** The port every container listens on (also given as PORT). */
  containerPort: number;
  /** Requests and limits of each container. */
  pod: { cpu: string; memory: string };
  /** Per-tenant ResourceQuota. */
  quota: { pods: number; cpu: string; memory: string };
}

export function namespaceName(settings: Pick<KubeSettings, 'namespacePrefix'>, tenant: string): string {
  return `${settings.namespacePrefix}${tenant}`;
}

export function revisionLabels(ref: RevisionRef): Record<string, string> {
  return {
    [labels.managedBy]: 'switchyard',
    [labels.tenant]: ref.tenant,
    [labels.service]: ref.service,
    [labels.revision]: ref.revision,
  };
}

/** The label selector of a revision's pods. */
export function revisionSelector(ref: RevisionRef): string {
  return Object.entries(revisionLabels(ref))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function tenantNamespace(settings: KubeSettings, tenant: string): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespaceName(settings, tenant),
      labels: {
        [labels.managedBy]: 'switchyard',
        [labels.tenant]: tenant,
        'pod-security.kubernetes.io/enforce': 'restricted',
      },
    },
  };
}

/**
 * Tenant pods accept traffic only from their own namespace and from edge Envoy pods, and send
 * it only to their own namespace, to namespaces that belong to neither another tenant nor
 * Switchyard (e.g. cluster DNS), and to addresses outside the cluster.
 */
export function tenantNetworkPolicy(settings: KubeSettings, tenant: string): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: 'switchyard-tenant-isolation',
      namespace: namespaceName(settings, tenant),
      labels: { [labels.managedBy]: 'switchyard' },
    },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          _from: [{ podSelector: {} }, { namespaceSelector: {}, podSelector: { matchLabels: { [labels.edge]: 'true' } } }],
        },
      ],
      egress: [
        {
          to: [
            { podSelector: {} },
            {
              namespaceSelector: {
                matchExpressions: [
                  { key: labels.tenant, operator: 'DoesNotExist' },
                  { key: labels.system, operator: 'DoesNotExist' },
                ],
              },
            },
            { ipBlock: { cidr: '0.0.0.0/0' } },
            { ipBlock: { cidr: '::/0' } },
          ],
        },
      ],
    },
  };
}

export function tenantResourceQuota(settings: KubeSettings, tenant: string): V1ResourceQuota {
  const { pods, cpu, memory } = settings.quota;
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: 'switchyard-tenant-quota', namespace: namespaceName(settings, tenant), labels: { [labels.managedBy]: 'switchyard' } },
    spec: {
      hard: { pods: String(pods), 'requests.cpu': cpu, 'requests.memory': memory, 'limits.cpu': cpu, 'limits.memory': memory },
    },
  };
}

/** The object that owns a revision's pods: deleting it (the service or revision went away) collects them. */
export function revisionAnchor(settings: KubeSettings, ref: RevisionRef, image: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: anchorName(ref), namespace: namespaceName(settings, ref.tenant), labels: revisionLabels(ref) },
    data: { image },
  };
}

export function anchorName(ref: RevisionRef): string {
  return `${ref.service}--${ref.revision}`;
}

export function readinessProbe(check: HealthCheckSpec, port: number): V1Probe {
  const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
  return {
    ...(check.protocol === 'http' ? { httpGet: { path: check.path, port } } : { tcpSocket: { port } }),
    periodSeconds: seconds(check.interval),
    timeoutSeconds: seconds(check.timeout),
    successThreshold: check.healthyThreshold,
    failureThreshold: check.unhealthyThreshold,
  };
}

export interface PodInput {
  ref: RevisionRef;
  name: string;
  image: string;
  env: Record<string, string>;
  healthCheck: HealthCheckSpec;
  /** The launch spec version (a hash of image, env and health check): pods of an older one are replaced. */
  specHash: string;
  anchorUid: string;
}

export const specHashAnnotation = 'switchyard.io/spec-hash';

export function revisionPod(settings: KubeSettings, input: PodInput): V1Pod {
  const { ref, containerPort } = { ref: input.ref, containerPort: settings.containerPort };
  const resources = { cpu: settings.pod.cpu, memory: settings.pod.memory };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: namespaceName(settings, ref.tenant),
      labels: revisionLabels(ref),
      annotations: { [specHashAnnotation]: input.specHash },
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: anchorName(ref), uid: input.anchorUid, blockOwnerDeletion: false }],
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: input.image,
          ports: [{ name: 'http', containerPort }],
          env: [
            ...Object.entries(input.env).map(([name, value]) => ({ name, value })),
            { name: 'PORT', value: String(containerPort) },
            { name: 'HOST', value: '0.0.0.0' },
          ],
          resources: { requests: resources, limits: resources },
          readinessProbe: readinessProbe(input.healthCheck, containerPort),
          securityContext: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
      ],
    },
  };
}

/** What a pod is to the autoscaler: starting until Ready with an IP, ready, or gone (failed, succeeded, being deleted). */
export function podState(pod: V1Pod): InstanceState | 'gone' {
  if (pod.metadata?.deletionTimestamp !== undefined) return 'gone';
  const phase = pod.status?.phase;
  if (phase === 'Failed' || phase === 'Succeeded') return 'gone';
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  return phase === 'Running' && ready && pod.status?.podIP !== undefined ? 'ready' : 'starting';
}
