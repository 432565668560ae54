import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { configKeys, tokenRecord, type KV } from '@switchyard/shared';

/**
 * Bearer-token authentication shared with the management API: tokens live in the config KV
 * under the SHA-256 of their secret (`tokens.<sha256>`), scoped to one tenant or, with tenant
 * null, admin; `SWITCHYARD_ADMIN_TOKEN` is an admin token that needs no record.
 */

export type Principal = { admin: true; tenant: null } | { admin: false; tenant: string };

export type Authentication = { ok: true; principal: Principal; tokenHash: string } | { ok: false; status: grpc.StatusObject };

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export async function authenticate(metadata: grpc.Metadata, deps: { kv: KV; adminToken: string | undefined }): Promise<Authentication> {
  const header = metadata.get('authorization')[0];
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (match === null) return refuse('missing "authorization: Bearer <token>" metadata');
  const secret = match[1] as string;
  const tokenHash = sha256Hex(secret);
  if (deps.adminToken !== undefined && timingSafeEqual(Buffer.from(tokenHash, 'hex'), Buffer.from(sha256Hex(deps.adminToken), 'hex'))) {
    return { ok: true, principal: { admin: true, tenant: null }, tokenHash };
  }
  const entry = await deps.kv.get(configKeys.token(tokenHash));
  if (entry === null || entry.operation !== 'PUT') return refuse('unknown or revoked token');
  let record;
  try {
    record = tokenRecord.safeParse(entry.json());
  } catch {
    return refuse('unreadable token record');
  }
  if (!record.success) return refuse('unreadable token record');
  const principal: Principal = record.data.tenant === null ? { admin: true, tenant: null } : { admin: false, tenant: record.data.tenant };
  return { ok: true, principal, tokenHash };
}

function refuse(details: string): Authentication {
  return { ok: false, status: { code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() } };
}
