import { createHash } from 'node:crypto';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What keeps a local instance away from Switchyard and from other tenants' instances:
 *
 * - its environment is built from nothing: `PORT`, `HOST`, the revision's `env`, `PATH` and
 *   `LANG`, and `HOME`/`TMPDIR` pointing at its own directory (see {@link instanceEnv});
 * - it runs in a fresh directory of its own (mode 0700), removed when it exits;
 * - when Switchyard runs as root, it runs as its tenant's own unprivileged uid/gid (one per
 *   tenant, see {@link tenantIdentity}), owning that directory and nothing else: it cannot read the
 *   0700 data directory or the 0600 token file, `/proc/<pid>/environ` of Switchyard or of
 *   another tenant's instances, nor signal them. Run as another user, Switchyard cannot
 *   switch uid and the instance keeps Switchyard's.
 */

export interface InstanceIdentity {
  uid: number;
  gid: number;
}

/** Where tenant uids come from: `count` uids from `base` up. */
export interface UidRange {
  base: number;
  count: number;
}

/**
 * A tenant's own uid (and gid of the same number): a hash of its name into `range`, so that
 * every autoscaler replica gives a tenant the same uid without sharing any state. With the
 * default billion uids, 10,000 tenants share one by chance with a probability of about 5 %.
 */
export function tenantIdentity(tenant: string, range: UidRange): InstanceIdentity {
  const hash = createHash('sha256').update(tenant).digest().readUIntBE(0, 6);
  const uid = range.base + (hash % range.count);
  return { uid, gid: uid };
}

/** Variables an instance gets from the autoscaler's own environment: none that could carry a secret. */
const inheritedEnv = ['PATH', 'LANG'] as const;

/** The whole environment of an instance; the platform's values win over the revision's. */
export function instanceEnv(
  parent: NodeJS.ProcessEnv,
  revisionEnv: Record<string, string>,
  instance: { port: number; host: string; home: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of inheritedEnv) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    ...revisionEnv,
    PORT: String(instance.port),
    HOST: instance.host,
    HOME: instance.home,
    TMPDIR: instance.home,
  };
}

export interface Sandbox {
  /** The instance's working directory (also its HOME and TMPDIR). */
  dir: string;
  /** Set when the instance runs under another uid than Switchyard's. */
  identity: InstanceIdentity | undefined;
  /** Removes the directory and everything the instance left in it. */
  remove(): Promise<void>;
}

/** Makes the working directory of one instance, owned by `identity` when given. */
export async function createSandbox(identity: InstanceIdentity | undefined): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-instance-'));
  try {
    await chmod(dir, 0o700);
    if (identity !== undefined) await chown(dir, identity.uid, identity.gid);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return sandboxAt(dir, identity);
}

/** The sandbox in `dir`, e.g. of an instance an earlier autoscaler started. */
export function sandboxAt(dir: string, identity?: InstanceIdentity): Sandbox {
  return { dir, identity, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Whether this process may run children as other users. */
export function canSwitchUser(): boolean {
  return process.getuid?.() === 0;
}
