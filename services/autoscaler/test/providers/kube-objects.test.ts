import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { HealthCheckSpec } from '@switchyard/shared';
import {
  podState,
  readinessProbe,
  revisionPod,
  tenantNamespace,
  tenantNetworkPolicy,
  tenantResourceQuota,
  type KubeSettings,
} from '../../src/providers/kube-objects.js';
import { pickScaleIn } from '../../src/providers/scale-in.js';

const healthCheck = (check: Partial<HealthCheckSpec>): HealthCheckSpec => ({
  protocol: 'tcp',
  path: '/',
  interval: 5000,
  timeout: 2000,
  healthyThreshold: 1,
  unhealthyThreshold: 5,
  gracePeriod: 10_000,
  ...check,
});
const settings: KubeSettings = {
  namespacePrefix: 'sy-',
  containerPort: 8080,
  pod: { cpu: '100m', memory: '64Mi' },
  quota: { pods: 3, cpu: '1', memory: '1Gi' },
};
const ref = { tenant: 'acme', service: 'web', revision: 'blue' };
const managed = { 'app.kubernetes.io/managed-by': 'switchyard' };
const revisionLabels = { ...managed, 'switchyard.io/tenant': 'acme', 'switchyard.io/service': 'web', 'switchyard.io/revision': 'blue' };

describe('tenant objects', () => {
  it('a namespace per tenant, enforcing the restricted pod security standard', () => {
    expect(tenantNamespace(settings, 'acme')).toEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'sy-acme',
        labels: { ...managed, 'switchyard.io/tenant': 'acme', 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    });
  });

  it('a NetworkPolicy: in from the namespace and edge pods, out to neither tenants nor Switchyard', () => {
    expect(tenantNetworkPolicy(settings, 'acme')).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'switchyard-tenant-isolation', namespace: 'sy-acme', labels: managed },
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { _from: [{ podSelector: {} }, { namespaceSelector: {}, podSelector: { matchLabels: { 'switchyard.io/edge': 'true' } } }] },
        ],
        egress: [
          {
            to: [
              { podSelector: {} },
              {
                namespaceSelector: {
                  matchExpressions: [
                    { key: 'switchyard.io/tenant', operator: 'DoesNotExist' },
                    { key: 'switchyard.io/system', operator: 'DoesNotExist' },
                  ],
                },
              },
              { ipBlock: { cidr: '0.0.0.0/0' } },
              { ipBlock: { cidr: '::/0' } },
            ],
          },
        ],
      },
    });
  });

  it('a ResourceQuota on pods, CPU and memory', () => {
    expect(tenantResourceQuota(settings, 'acme')).toEqual({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'switchyard-tenant-quota', namespace: 'sy-acme', labels: managed },
      spec: { hard: { pods: '3', 'requests.cpu': '1', 'requests.memory': '1Gi', 'limits.cpu': '1', 'limits.memory': '1Gi' } },
    });
  });
});

describe('revisionPod', () => {
  it('runs the image non-root with a restricted security context, env, port, probe and owner', () => {
    const pod = revisionPod(settings, {
      ref,
      name: 'web-blue-abc123',
      image: 'registry.test/web:1',
      env: { GREETING: 'hi' },
      healthCheck: healthCheck({ protocol: 'http', path: '/healthz', interval: 2000, timeout: 1500 }),
      specHash: 'h1',
      anchorUid: 'uid-1',
    });
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-blue-abc123',
        namespace: 'sy-acme',
        labels: revisionLabels,
        annotations: { 'switchyard.io/spec-hash': 'h1' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'web--blue', uid: 'uid-1', blockOwnerDeletion: false }],
      },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'app',
            image: 'registry.test/web:1',
            ports: [{ name: 'http', containerPort: 8080 }],
            env: [
              { name: 'GREETING', value: 'hi' },
              { name: 'PORT', value: '8080' },
              { name: 'HOST', value: '0.0.0.0' },
            ],
            resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
            readinessProbe: {
              httpGet: { path: '/healthz', port: 8080 },
              periodSeconds: 2,
              timeoutSeconds: 2,
              successThreshold: 1,
              failureThreshold: 5,
            },
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
    });
  });

  it('a TCP health check becomes a tcpSocket probe', () => {
    expect(readinessProbe(healthCheck({}), 9000)).toEqual({
      tcpSocket: { port: 9000 },
      periodSeconds: 5,
      timeoutSeconds: 2,
      successThreshold: 1,
      failureThreshold: 5,
    });
  });
});

describe('podState', () => {
  const ready = [{ type: 'Ready', status: 'True' }];
  it.each<{ label: string; pod: V1Pod; state: string }>([
    { label: 'pending', pod: { status: { phase: 'Pending' } }, state: 'starting' },
    {
      label: 'running, not ready',
      pod: { status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'False' }] } },
      state: 'starting',
    },
    { label: 'running and ready', pod: { status: { phase: 'Running', podIP: '10.0.0.1', conditions: ready } }, state: 'ready' },
    { label: 'ready without an IP', pod: { status: { phase: 'Running', conditions: ready } }, state: 'starting' },
    { label: 'failed', pod: { status: { phase: 'Failed' } }, state: 'gone' },
    { label: 'succeeded', pod: { status: { phase: 'Succeeded' } }, state: 'gone' },
    {
      label: 'being deleted',
      pod: { metadata: { deletionTimestamp: new Date() }, status: { phase: 'Running', podIP: '10.0.0.1', conditions: ready } },
      state: 'gone',
    },
  ])('$label → $state', ({ pod, state }) => {
    expect(podState(pod)).toBe(state);
  });
});

describe('pickScaleIn', () => {
  const i = (id: string, state: 'starting' | 'ready' | 'draining', startedAt: number) => ({ id, state, startedAt });
  it.each([
    { label: 'nothing surplus', instances: [i('a', 'ready', 1)], surplus: 0, picked: [] },
    { label: 'starting before ready', instances: [i('a', 'ready', 3), i('b', 'starting', 1)], surplus: 1, picked: ['b'] },
    {
      label: 'newest ready first',
      instances: [i('a', 'ready', 1), i('b', 'ready', 3), i('c', 'ready', 2)],
      surplus: 2,
      picked: ['b', 'c'],
    },
    { label: 'draining never picked', instances: [i('a', 'draining', 9), i('b', 'ready', 1)], surplus: 1, picked: ['b'] },
    { label: 'no more than there are', instances: [i('a', 'ready', 1)], surplus: 5, picked: ['a'] },
  ])('$label', ({ instances, surplus, picked }) => {
    expect(pickScaleIn(instances, surplus).map((x) => x.id)).toEqual(picked);
  });
});
