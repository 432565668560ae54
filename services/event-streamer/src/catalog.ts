import { clusterName, parseClusterName, type EndpointSet, type RevisionRef, type ServiceRecord } from '@switchyard/shared';
import type { CheckProtocol } from './assigner.js';

/**
 * What must be health-checked: every endpoint of every revision of every service, with the
 * service's health-check settings. A revision's endpoints come from its latest endpoint set
 * (managed instances) or else from its static `endpoints`. Pure: fed by the NATS adapter.
 */

export interface CheckSettings {
  protocol: CheckProtocol;
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  gracePeriodMs: number;
  /** Host header of HTTP checks: the service's first domain. */
  host: string;
  /** HTTP checks of gRPC services speak HTTP/2. */
  http2: boolean;
}

export interface CheckTarget {
  key: string;
  cluster: string;
  ref: RevisionRef;
  address: string;
  port: number;
  id?: string;
  /** When the instance started, if its endpoint set says so. */
  startedAt?: number;
  check: CheckSettings;
}

export interface CatalogDiff {
  /** Targets that are new or whose settings changed. */
  upserted: CheckTarget[];
  removed: string[];
}

export function targetKey(cluster: string, address: string, port: number): string {
  return `${cluster}|${address}|${port}`;
}

export class Catalog {
  private readonly services = new Map<string, ServiceRecord>();
  private readonly sets = new Map<string, EndpointSet>();
  private readonly targets = new Map<string, CheckTarget>();
  private readonly byCluster = new Map<string, Map<string, CheckTarget>>();

  get size(): number {
    return this.targets.size;
  }

  get(key: string): CheckTarget | undefined {
    return this.targets.get(key);
  }

  keys(): IterableIterator<string> {
    return this.targets.keys();
  }

  hasCluster(cluster: string): boolean {
    return this.byCluster.has(cluster);
  }

  setService(record: ServiceRecord): CatalogDiff {
    const id = `${record.tenant}/${record.name}`;
    const previous = this.services.get(id);
    this.services.set(id, record);
    return this.rebuild([...clustersOf(previous), ...clustersOf(record)]);
  }

  deleteService(tenant: string, service: string): CatalogDiff {
    const id = `${tenant}/${service}`;
    const previous = this.services.get(id);
    this.services.delete(id);
    const clusters = clustersOf(previous);
    for (const cluster of clusters) this.sets.delete(cluster);
    return this.rebuild(clusters);
  }

  /** Applies a revision's full endpoint set; sets older than the one held are ignored (returns undefined). */
  setEndpointSet(set: EndpointSet): CatalogDiff | undefined {
    const cluster = clusterName(set);
    const held = this.sets.get(cluster);
    if (held !== undefined && held.generation > set.generation) return undefined;
    this.sets.set(cluster, set);
    return this.rebuild([cluster]);
  }

  private rebuild(clusters: string[]): CatalogDiff {
    const diff: CatalogDiff = { upserted: [], removed: [] };
    for (const cluster of new Set(clusters)) {
      const wanted = this.desired(cluster);
      const current = this.byCluster.get(cluster) ?? new Map<string, CheckTarget>();
      for (const key of current.keys()) {
        if (wanted.has(key)) continue;
        this.targets.delete(key);
        diff.removed.push(key);
      }
      for (const [key, target] of wanted) {
        const held = current.get(key);
        if (held !== undefined && sameTarget(held, target)) {
          wanted.set(key, held);
          continue;
        }
        this.targets.set(key, target);
        diff.upserted.push(target);
      }
      if (wanted.size === 0) this.byCluster.delete(cluster);
      else this.byCluster.set(cluster, wanted);
    }
    return diff;
  }

  private desired(cluster: string): Map<string, CheckTarget> {
    const wanted = new Map<string, CheckTarget>();
    const ref = parseClusterName(cluster);
    const record = ref && this.services.get(`${ref.tenant}/${ref.service}`);
    const revision = record?.spec.revisions.find((r) => r.name === ref?.revision);
    if (ref === undefined || record === undefined || revision === undefined) return wanted;
    const check = settingsOf(record);
    const set = this.sets.get(cluster);
    const endpoints: { address: string; port: number; id?: string; startedAt?: number }[] = set?.endpoints ?? revision.endpoints ?? [];
    for (const endpoint of endpoints) {
      const key = targetKey(cluster, endpoint.address, endpoint.port);
      if (wanted.has(key)) continue;
      wanted.set(key, {
        key,
        cluster,
        ref,
        address: endpoint.address,
        port: endpoint.port,
        ...(endpoint.id === undefined ? {} : { id: endpoint.id }),
        ...(endpoint.startedAt === undefined ? {} : { startedAt: endpoint.startedAt }),
        check,
      });
    }
    return wanted;
  }
}

function clustersOf(record: ServiceRecord | undefined): string[] {
  if (record === undefined) return [];
  return record.spec.revisions.map((revision) => clusterName({ tenant: record.tenant, service: record.name, revision: revision.name }));
}

function settingsOf(record: ServiceRecord): CheckSettings {
  const hc = record.spec.healthCheck;
  return {
    protocol: hc.protocol,
    path: hc.path,
    intervalMs: hc.interval,
    timeoutMs: hc.timeout,
    healthyThreshold: hc.healthyThreshold,
    unhealthyThreshold: hc.unhealthyThreshold,
    gracePeriodMs: hc.gracePeriod,
    host: record.spec.domains[0] as string,
    http2: record.spec.protocol === 'grpc',
  };
}

function sameTarget(a: CheckTarget, b: CheckTarget): boolean {
  return a.id === b.id && a.startedAt === b.startedAt && JSON.stringify(a.check) === JSON.stringify(b.check);
}
