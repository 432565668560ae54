import { trafficSplit, type ServiceSpec } from '@switchyard/shared';
import type { ServiceStatus, XdsNodeStatus } from './schemas.js';

export interface ServiceRef {
  tenant: string;
  service: string;
  spec: ServiceSpec;
  /** KV revision of the spec (its ETag). */
  specRevision: number;
}

/**
 * Supplies a service's live status. It gets what the spec alone says (`fromSpec`: revisions,
 * traffic, static endpoints of unknown health, no xDS state) and returns it completed with
 * what the running system knows: managed endpoints, health, xDS delivery.
 */
export type ServiceStatusProvider = (ref: ServiceRef, fromSpec: ServiceStatus) => ServiceStatus | Promise<ServiceStatus>;

/** Why the translator refuses (parts of) a service: whole-service errors and dropped endpoints, by field. */
export type TranslationErrorsProvider = (tenant: string, service: string) => { field: string; message: string }[];

/** Supplies the connected xDS clients and their per-type delivery state. */
export type NodesProvider = () => XdsNodeStatus[] | Promise<XdsNodeStatus[]>;

/** What the spec alone says about a service's status. */
export function statusFromSpec(ref: ServiceRef): ServiceStatus {
  const percentOf = new Map(trafficSplit(ref.spec).map((t) => [t.revision, t.percent]));
  return {
    specRevision: ref.specRevision,
    revisions: ref.spec.revisions.map((revision) => ({
      name: revision.name,
      source: revision.endpoints === undefined ? 'managed' : 'static',
      percent: percentOf.get(revision.name) ?? 0,
      endpoints: (revision.endpoints ?? []).map((e) => ({
        address: e.address,
        port: e.port,
        id: null,
        state: 'static',
        health: 'unknown',
      })),
    })),
    xds: null,
  };
}
