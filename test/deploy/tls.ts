import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { repoPath } from './support.js';

/** Where deploy/tls/make-certs.sh writes by default; generated, never committed. */
export const certsDir = 'deploy/tls/certs';
export const makeCertsScript = 'deploy/tls/make-certs.sh';

/** Runs make-certs.sh into `dir` (a fresh temp directory by default) and returns the directory. */
export function makeCerts(dir = mkdtempSync(join(tmpdir(), 'switchyard-certs-')), env: Record<string, string> = {}): string {
  execFileSync(repoPath(makeCertsScript), [dir], { stdio: 'ignore', env: { ...process.env, ...env } });
  return dir;
}

let made: Set<string> | undefined;

/** Every file and directory make-certs.sh writes, as repository paths under deploy/tls/certs. */
export function certPaths(): ReadonlySet<string> {
  if (made !== undefined) return made;
  const dir = makeCerts();
  try {
    made = new Set([certsDir]);
    const visit = (at: string) => {
      for (const entry of readdirSync(at, { withFileTypes: true })) {
        const path = join(at, entry.name);
        made?.add(posix.join(certsDir, relative(dir, path)));
        if (entry.isDirectory()) visit(path);
      }
    };
    visit(dir);
    return made;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
