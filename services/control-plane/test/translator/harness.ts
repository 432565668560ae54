import { readFileSync } from 'node:fs';
import { clusterName, type EndpointSet, type ServiceRecord, type TenantRecord } from '@switchyard/shared';
import { parse } from 'yaml';
import {
  defaultTranslateOptions,
  endpointKey,
  type DesiredState,
  type EndpointHealth,
  type TranslateOptions,
} from '../../src/translator/index.js';

/**
 * Golden-case input, written for people: tenants by grant, services by spec (as a tenant writes
 * it; the translator fills defaults), endpoint sets and health by revision.
 */
interface CaseInput {
  options?: Partial<TranslateOptions>;
  now?: number;
  tenants?: { name: string; domains: string[] }[];
  services?: { tenant: string; name: string; createdAt?: number; updatedAt?: number; spec: unknown }[];
  endpointSets?: { tenant: string; service: string; revision: string; generation?: number; endpoints: EndpointSet['endpoints'] }[];
  health?: {
    tenant: string;
    service: string;
    revision: string;
    address: string;
    port: number;
    state: EndpointHealth['state'];
    since?: number;
  }[];
}

export function tenantRecord(name: string, domains: string[]): TenantRecord {
  return { schemaVersion: 1, name, spec: { domains }, updatedAt: 0 };
}

/** A service record as it comes out of the KV; the spec is passed through unparsed so invalid input reaches the translator. */
export function serviceRecord(tenant: string, name: string, spec: unknown, updatedAt = 0, createdAt?: number): ServiceRecord {
  const record: ServiceRecord = { schemaVersion: 1, tenant, name, spec: spec as ServiceRecord['spec'], updatedAt };
  if (createdAt !== undefined) record.createdAt = createdAt;
  return record;
}

export function loadCase(file: string): { state: DesiredState; options: TranslateOptions } {
  const input = (parse(readFileSync(file, 'utf8')) ?? {}) as CaseInput;
  const endpointSets = new Map<string, EndpointSet>();
  for (const set of input.endpointSets ?? []) {
    const { tenant, service, revision } = set;
    endpointSets.set(clusterName(set), {
      schemaVersion: 1,
      tenant,
      service,
      revision,
      generation: set.generation ?? 1,
      endpoints: set.endpoints,
      ts: 0,
    });
  }
  const health = new Map<string, Map<string, EndpointHealth>>();
  for (const entry of input.health ?? []) {
    const cluster = clusterName(entry);
    const byEndpoint = health.get(cluster) ?? new Map<string, EndpointHealth>();
    byEndpoint.set(endpointKey(entry.address, entry.port), { state: entry.state, since: entry.since ?? 0 });
    health.set(cluster, byEndpoint);
  }
  return {
    state: {
      tenants: (input.tenants ?? []).map((t) => tenantRecord(t.name, t.domains)),
      services: (input.services ?? []).map((s) => serviceRecord(s.tenant, s.name, s.spec, s.updatedAt, s.createdAt)),
      endpointSets,
      health,
      now: input.now ?? 0,
    },
    options: { ...defaultTranslateOptions, ...input.options },
  };
}
