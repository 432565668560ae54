import {
  serviceRecord,
  type DeploymentEvent,
  type EndpointSet,
  type HealthTransition,
  type InstanceEvent,
  type ScaleDecision,
  type ServiceRecord,
  type ServiceSpecInput,
  type ServiceStatusEvent,
  type XdsEvent,
} from '@switchyard/shared';

/** A stored service record with every default filled in, as the control plane writes it. */
export function record(tenant: string, name: string, spec: Partial<ServiceSpecInput> = {}): ServiceRecord {
  return serviceRecord.parse({
    schemaVersion: 1,
    tenant,
    name,
    spec: { domains: [`${name}.${tenant}.example.com`], revisions: [{ name: 'blue', command: 'serve' }], ...spec },
    updatedAt: 1,
  });
}

export function endpointSet(
  ref: { tenant: string; service: string; revision: string },
  generation: number,
  endpoints: { address: string; port: number; id?: string; startedAt?: number }[],
): EndpointSet {
  return {
    schemaVersion: 1,
    ...ref,
    generation,
    endpoints: endpoints.map((e, i) => ({ id: e.id ?? `i-${i}`, state: 'ready' as const, ...e })),
    ts: 1,
  };
}

let ts = 1_700_000_000_000;
const next = () => ++ts;

/** One valid payload of each Watch API kind, each with a later timestamp than the one before. */
export const sampleEvents = {
  status: (tenant: string, service: string): ServiceStatusEvent => ({
    schemaVersion: 1,
    tenant,
    service,
    event: 'applied',
    specRevision: 3,
    revisions: ['blue'],
    traffic: [{ revision: 'blue', percent: 100 }],
    ts: next(),
  }),
  deploy: (tenant: string, service: string): DeploymentEvent => ({
    schemaVersion: 1,
    tenant,
    service,
    deploymentId: 'd-1',
    phase: 'shifting',
    revision: 'green',
    previousRevision: 'blue',
    traffic: [
      { revision: 'blue', percent: 50 },
      { revision: 'green', percent: 50 },
    ],
    healthyInstances: 2,
    desiredInstances: 2,
    errorRatio: 0,
    message: 'step 2 of 3',
    ts: next(),
  }),
  scale: (tenant: string, service: string, revision: string): ScaleDecision => ({
    schemaVersion: 1,
    tenant,
    service,
    revision,
    ts: next(),
    current: 1,
    desired: 3,
    stableConcurrency: 150,
    panicConcurrency: 150,
    panic: false,
    targetPerInstance: 70,
    limitedBy: null,
    reason: 'stable window',
  }),
  instance: (tenant: string, service: string, revision: string): InstanceEvent => ({
    schemaVersion: 1,
    tenant,
    service,
    revision,
    instance: 'i-1',
    event: 'ready',
    detail: '',
    ts: next(),
  }),
  health: (tenant: string, service: string, revision: string): HealthTransition => ({
    schemaVersion: 1,
    tenant,
    service,
    revision,
    endpoint: { address: '10.0.0.1', port: 80 },
    state: 'healthy',
    previous: 'unknown',
    reason: '2 of 3 checkers report healthy',
    votes: [],
    ts: next(),
  }),
  xds: (): XdsEvent => ({ schemaVersion: 1, event: 'connect', nodeId: 'envoy-1', cluster: 'edge', ts: next() }),
};
