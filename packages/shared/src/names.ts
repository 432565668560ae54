import { z } from 'zod';

/** A DNS label: what tenant, service and revision names must be (no dots, so they fit one subject token and one stat-tag token). */
export const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit',
  );

export interface RevisionRef {
  tenant: string;
  service: string;
  revision: string;
}

const clusterPrefix = 'sy_';

/**
 * The Envoy cluster for one revision. DNS labels cannot contain "_", so "_" separates the
 * parts unambiguously, and the name has no dots: Envoy's stat tag extraction reads exactly
 * one dot-separated token as the cluster name.
 */
export function clusterName(ref: RevisionRef): string {
  return `${clusterPrefix}${ref.tenant}_${ref.service}_${ref.revision}`;
}

/** The inverse of {@link clusterName}; undefined for clusters that are not Switchyard's. */
export function parseClusterName(name: string): RevisionRef | undefined {
  if (!name.startsWith(clusterPrefix)) return undefined;
  const parts = name.slice(clusterPrefix.length).split('_');
  if (parts.length !== 3) return undefined;
  const [tenant, service, revision] = parts as [string, string, string];
  for (const part of parts) if (!dnsLabel.safeParse(part).success) return undefined;
  return { tenant, service, revision };
}

/**
 * Headers each route sets per revision (overwriting a client's) for the activator: which
 * revision a request is for (its cluster name) and the route's timeout in milliseconds.
 */
export const activatorHeaders = { revision: 'x-switchyard-revision', timeoutMs: 'x-switchyard-timeout-ms' } as const;
