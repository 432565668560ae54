import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ConfigView } from '../store/index.js';
import { ApiError, notFound } from './errors.js';

/**
 * Bearer tokens. The admin token comes from the environment; tenant tokens are issued by the
 * admin and stored only as their SHA-256 (`tokens.<hex>`), so the bucket never holds a secret.
 */

export type Principal = { role: 'admin' } | { role: 'tenant'; tenant: string };

const principals = new WeakMap<FastifyRequest, Principal>();

export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  principals.set(request, principal);
}

/** The caller of an authenticated route (set by the auth hook before the handler runs). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (principal === undefined) throw new Error(`${request.url} has no principal: its route declares no access`);
  return principal;
}

/** Who may call a route: the admin only, the admin or the tenant named in the path, or any valid token. */
export type Access = 'admin' | 'tenant' | 'authenticated';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new random secret; the prefix makes leaked tokens easy to grep for. */
export function newToken(): string {
  return `syt_${randomBytes(32).toString('base64url')}`;
}

const unauthorized = (message: string) => new ApiError(401, [{ field: 'header.authorization', message }]);

export class Authenticator {
  private readonly adminDigest: Buffer | undefined;

  constructor(
    adminToken: string | undefined,
    private readonly view: ConfigView,
  ) {
    this.adminDigest = adminToken === undefined ? undefined : createHash('sha256').update(adminToken).digest();
  }

  get adminEnabled(): boolean {
    return this.adminDigest !== undefined;
  }

  authenticate(header: string | undefined): Principal {
    if (header === undefined || header === '') throw unauthorized('is missing: send "Authorization: Bearer <token>"');
    const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (token === undefined) throw unauthorized('must be "Bearer <token>"');
    const digest = createHash('sha256').update(token).digest();
    if (this.adminDigest !== undefined && timingSafeEqual(digest, this.adminDigest)) return { role: 'admin' };
    const stored = this.view.token(digest.toString('hex'));
    if (stored === undefined) throw unauthorized('is not a token this API knows: mistyped, revoked, or issued by another installation');
    const tenant = stored.record.tenant;
    if (tenant === null) return { role: 'admin' };
    if (this.view.tenant(tenant) === undefined) throw unauthorized(`belongs to tenant "${tenant}", which no longer exists`);
    return { role: 'tenant', tenant };
  }

  /**
   * Throws unless the principal may use a route. A tenant token on another tenant's path gets
   * the same 404 as a tenant that does not exist, so tokens cannot probe for tenants.
   */
  authorize(principal: Principal, access: Access, tenantInPath: string | undefined): void {
    if (principal.role === 'admin' || access === 'authenticated') return;
    if (access === 'admin') {
      throw new ApiError(403, [
        { field: 'header.authorization', message: `is a token of tenant "${principal.tenant}"; this route needs the admin token` },
      ]);
    }
    if (tenantInPath !== principal.tenant) throw notFound('path.tenant', `no tenant "${tenantInPath ?? ''}"`);
  }
}
