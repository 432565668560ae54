import { posix } from 'node:path';
import { busIdentities, passwordVariable } from '@switchyard/shared';
import { isRecord, isServiceName, readYaml, walkStrings, type ServiceName } from './support.js';

export const composeFile = 'deploy/compose/docker-compose.yml';
const composeDir = posix.dirname(composeFile);

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | Record<string, unknown>)[];
  ports?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string };
  networks?: Record<string, { ipv4_address?: string } | null> | string[];
  [key: string]: unknown;
}

export interface Compose {
  services: Record<string, ComposeService>;
  networks?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

const variable = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Compose's variable interpolation for the forms the file uses: `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `$VAR` and `$$` for a literal dollar.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    variable,
    (match, braced: string | undefined, operator: string | undefined, operand: string | undefined, bare: string | undefined) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare) as string;
      const value = env[name];
      const unsetOrEmpty = value === undefined || value === '';
      switch (operator) {
        case ':-':
          return unsetOrEmpty ? (operand ?? '') : value;
        case '-':
          return value === undefined ? (operand ?? '') : value;
        case ':?':
        case '?':
          if (operator === ':?' ? unsetOrEmpty : value === undefined) throw new Error(`${name} must be set: ${operand ?? ''}`);
          return value as string;
        default:
          return value ?? '';
      }
    },
  );
}

/**
 * The NATS passwords make-nats-passwords.sh writes to deploy/compose/.env (placeholders here),
 * without which Compose refuses the file.
 */
export const natsPasswordEnv: Record<string, string> = Object.fromEntries(
  busIdentities.map((identity) => [passwordVariable(identity), `placeholder-${identity}`]),
);

/** The compose file as Compose sees it with only the NATS passwords set: every other default applied. */
export function loadCompose(env: Record<string, string | undefined> = natsPasswordEnv): Compose {
  const raw = readYaml(composeFile);
  if (!isRecord(raw) || !isRecord(raw.services)) throw new Error(`${composeFile} has no services`);
  return walkStrings(raw, (text) => interpolate(text, env)) as Compose;
}

export function serviceEnvironment(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(service.environment)) {
    for (const entry of service.environment) {
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  } else if (service.environment !== undefined) {
    for (const [name, value] of Object.entries(service.environment)) env[name] = value === null ? '' : String(value);
  }
  return env;
}

interface Mount {
  /** A path relative to the repository root for a bind mount, the volume's name otherwise. */
  source: string;
  target: string;
  readOnly: boolean;
}

/** Volumes in short syntax (`source:target[:ro]`), split into bind mounts of files and named volumes. */
function mounts(service: ComposeService): { binds: Mount[]; named: Mount[] } {
  const binds: Mount[] = [];
  const named: Mount[] = [];
  for (const volume of service.volumes ?? []) {
    if (typeof volume !== 'string') continue;
    const [source, target, mode] = volume.split(':') as [string, string, string | undefined];
    const readOnly = mode?.split(',').includes('ro') ?? false;
    if (source.startsWith('.') || source.startsWith('/'))
      binds.push({ source: posix.normalize(posix.join(composeDir, source)), target, readOnly });
    else named.push({ source, target, readOnly });
  }
  return { binds, named };
}

export function bindMounts(service: ComposeService): Mount[] {
  return mounts(service).binds;
}

export function namedVolumes(service: ComposeService): Mount[] {
  return mounts(service).named;
}

/** The Compose services that run a Switchyard service from the project's image (command = service name). */
export function switchyardServices(compose: Compose): { composeName: string; service: ServiceName; definition: ComposeService }[] {
  return Object.entries(compose.services).flatMap(([composeName, definition]) => {
    const first = definition.command?.[0];
    return definition.build !== undefined && isServiceName(first) ? [{ composeName, service: first, definition }] : [];
  });
}

/** The URL a health check of the form `entrypoint.sh probe URL` or `wget … URL` asks. */
export function healthcheckUrl(service: ComposeService): URL | undefined {
  const test = service.healthcheck?.test;
  const words = Array.isArray(test) ? test : [];
  const url = words.find((word) => /^https?:\/\//.test(word));
  return url === undefined ? undefined : new URL(url);
}
