import { serviceRecord, type EndpointSet, type ServiceRecord, type ServiceSpecInput } from '@switchyard/shared';

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
