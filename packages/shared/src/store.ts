import { z } from 'zod';
import { dnsLabel } from './names.js';
import { serviceSpec, tenantSpec } from './spec.js';

/**
 * Layout of the desired-state KV bucket (`buckets.config`). The control plane writes it
 * through the management API; every service may watch it.
 */
export const configKeys = {
  tenant: (tenant: string) => `tenants.${tenant}`,
  service: (tenant: string, service: string) => `services.${tenant}.${service}`,
  /** Tokens are stored by the SHA-256 of their secret, never in clear. */
  token: (sha256Hex: string) => `tokens.${sha256Hex}`,
  /** The service's current (or last) deployment. */
  deployment: (tenant: string, service: string) => `deployments.${tenant}.${service}`,
  allDeployments: 'deployments.>',
  allTenants: 'tenants.>',
  allServices: 'services.>',
  servicesOf: (tenant: string) => `services.${tenant}.>`,
  deploymentsOf: (tenant: string) => `deployments.${tenant}.>`,
} as const;

export const tenantRecord = z.object({
  schemaVersion: z.literal(1),
  name: dnsLabel,
  spec: tenantSpec,
  updatedAt: z.number().int(),
});
export type TenantRecord = z.infer<typeof tenantRecord>;

/** A service as stored: the spec with every default filled in (durations in ms). */
export const serviceRecord = z.object({
  schemaVersion: z.literal(1),
  tenant: dnsLabel,
  name: dnsLabel,
  spec: serviceSpec,
  updatedAt: z.number().int(),
  /** When the service was first stored (kept on updates); the translator gives contested domains to the oldest service. */
  createdAt: z.number().int().optional(),
});
export type ServiceRecord = z.infer<typeof serviceRecord>;

export const tokenRecord = z.object({
  schemaVersion: z.literal(1),
  /** The tenant this token may act for; null for an admin token. */
  tenant: dnsLabel.nullable(),
  createdAt: z.number().int(),
});
export type TokenRecord = z.infer<typeof tokenRecord>;

const trafficEntry = z.object({ revision: dnsLabel, percent: z.number().int().min(0).max(100) });

export const deploymentPhase = z.enum(['scaling', 'baking', 'completed', 'rolled_back', 'failed']);
export type DeploymentPhase = z.infer<typeof deploymentPhase>;

/**
 * A deployment of one revision of a service: created by the API, advanced by the control
 * plane's deployment controller. While it is not finished, the autoscaler keeps both the new
 * and the previous revision running whatever the traffic split says.
 */
export const deploymentRecord = z.object({
  schemaVersion: z.literal(1),
  id: z.string().min(1),
  tenant: dnsLabel,
  service: dnsLabel,
  revision: dnsLabel,
  previousRevision: dnsLabel.nullable(),
  /** The split before the deployment started; a rollback restores it exactly. */
  previousTraffic: z.array(trafficEntry),
  strategy: z.enum(['blue-green', 'canary']),
  /** Traffic percentages for the new revision, ending at 100 (blue-green: [100]). */
  steps: z.array(z.number().int().min(1).max(100)).min(1),
  bakeMs: z.number().int().nonnegative(),
  maxErrorRatio: z.number().min(0).max(1),
  phase: deploymentPhase,
  /** Index into steps of the split in force; -1 before the first shift. */
  stepIndex: z.number().int().min(-1),
  startedAt: z.number().int(),
  phaseSince: z.number().int(),
  message: z.string(),
});
export type DeploymentRecord = z.infer<typeof deploymentRecord>;

export function deploymentActive(deployment: DeploymentRecord | undefined): boolean {
  return deployment !== undefined && (deployment.phase === 'scaling' || deployment.phase === 'baking');
}

/** Parses a key of the config bucket into what it names. */
export function parseConfigKey(
  key: string,
):
  | { kind: 'tenant'; tenant: string }
  | { kind: 'service'; tenant: string; service: string }
  | { kind: 'deployment'; tenant: string; service: string }
  | { kind: 'token' }
  | undefined {
  const parts = key.split('.');
  if (parts[0] === 'tenants' && parts.length === 2) return { kind: 'tenant', tenant: parts[1] as string };
  if (parts[0] === 'services' && parts.length === 3) return { kind: 'service', tenant: parts[1] as string, service: parts[2] as string };
  if (parts[0] === 'deployments' && parts.length === 3)
    return { kind: 'deployment', tenant: parts[1] as string, service: parts[2] as string };
  if (parts[0] === 'tokens' && parts.length === 2) return { kind: 'token' };
  return undefined;
}
