import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigError, activatorEnv, autoscalerEnv, controlPlaneEnv, eventStreamerEnv, loadConfig, statsSinkEnv } from '@switchyard/shared';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

/**
 * Files other parts of the project write. The deploy manifests mount or pack them; tests that
 * read them skip, naming the file, while it does not exist yet.
 */
export const peerFiles = {
  envoyBootstrap: 'deploy/envoy/bootstrap.yaml',
  prometheusConfig: 'deploy/prometheus/prometheus.yml',
  prometheusAlerts: 'deploy/prometheus/alerts.yml',
  grafanaProvisioning: 'deploy/grafana/provisioning',
  grafanaDatasources: 'deploy/grafana/provisioning/datasources',
  grafanaDashboardProviders: 'deploy/grafana/provisioning/dashboards',
  grafanaDashboards: 'deploy/grafana/dashboards',
} as const;

/** The skip note for a test that needs a file some other part of the project has not written yet. */
export function notYetWritten(path: string): string {
  const writer = path.startsWith('deploy/envoy/') ? 'issue 3' : 'issue 4';
  return `${path} does not exist yet (${writer} writes it)`;
}

export function exists(path: string): boolean {
  return existsSync(repoPath(path));
}

export function readText(path: string): string {
  return readFileSync(repoPath(path), 'utf8');
}

export function readYaml(path: string): unknown {
  return parse(readText(path));
}

/** Every document of a multi-document YAML file; a syntax error in any of them throws. */
export function readYamlDocuments(path: string): unknown[] {
  return parseAllDocuments(readText(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

/** Whether a command runs here; deployment tools (kubectl, docker, promtool) are optional on a developer machine. */
export function commandWorks(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 20_000 });
  return result.error === undefined && result.status === 0;
}

/**
 * Fails, naming how to get it, when a tool that scripts/setup.sh installs is missing: a test that
 * skipped itself would let CI pass without checking anything.
 */
export function requireCommand(command: string, args: string[], installedBy: string): void {
  if (!commandWorks(command, args)) throw new Error(`\`${command} ${args.join(' ')}\` does not run here; ${installedBy}`);
}

/**
 * The Switchyard services: the env schema that configures each (packages/shared/src/config.ts) and
 * the config keys that hold its listening ports, by the port names the manifests use.
 */
export const services = {
  'control-plane': {
    schema: controlPlaneEnv,
    ports: { grpc: 'CONTROL_PLANE_GRPC_PORT', api: 'API_PORT', admin: 'CONTROL_PLANE_ADMIN_PORT' },
  },
  'stats-sink': { schema: statsSinkEnv, ports: { grpc: 'STATS_SINK_GRPC_PORT', admin: 'STATS_SINK_ADMIN_PORT' } },
  'event-streamer': { schema: eventStreamerEnv, ports: { grpc: 'EVENT_STREAMER_GRPC_PORT', admin: 'EVENT_STREAMER_ADMIN_PORT' } },
  autoscaler: { schema: autoscalerEnv, ports: { admin: 'AUTOSCALER_ADMIN_PORT' } },
  activator: { schema: activatorEnv, ports: { proxy: 'ACTIVATOR_PORT', admin: 'ACTIVATOR_ADMIN_PORT' } },
} as const;
export type ServiceName = keyof typeof services;

export function isServiceName(name: unknown): name is ServiceName {
  return typeof name === 'string' && Object.hasOwn(services, name);
}

export interface ServiceEnvCheck {
  /** Variables the manifest sets that the service does not read, and values it rejects. */
  problems: string[];
  /** The parsed configuration, when the variables parse. */
  config: Record<string, unknown> | undefined;
  /** Listening port by the manifest's port name (grpc, api, admin), from the parsed config. */
  ports: Record<string, number>;
}

/**
 * Checks what a manifest sets for a service against that service's schema: every variable
 * must be one the service reads (a misspelt name would otherwise be ignored silently), and
 * together they must parse with the service's own loadConfig.
 */
export function checkServiceEnv(service: ServiceName, env: Record<string, string>): ServiceEnvCheck {
  const { schema, ports } = services[service];
  const known = new Set(Object.keys(schema.shape));
  const problems = Object.keys(env)
    .filter((name) => !known.has(name))
    .map((name) => `${name} is not a setting of ${service} (packages/shared/src/config.ts)`);
  let config: Record<string, unknown> | undefined;
  try {
    config = loadConfig(schema, env) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const portNumbers: Record<string, number> = {};
  if (config !== undefined) {
    for (const [portName, key] of Object.entries(ports)) portNumbers[portName] = config[key] as number;
  }
  return { problems, config, ports: portNumbers };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every value in a parsed YAML/JSON tree, with its path, for checks that look for a field wherever it is. */
export function* walk(value: unknown, path = ''): Generator<{ path: string; key: string; value: unknown }> {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      yield { path: `${path}[${i}]`, key: String(i), value: item };
      yield* walk(item, `${path}[${i}]`);
    }
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      yield { path: at, key, value: item };
      yield* walk(item, at);
    }
  }
}

/** A copy of a parsed YAML/JSON tree with every string value passed through `map` (keys are kept). */
export function walkStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item) => walkStrings(item, map));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walkStrings(item, map)]));
  return value;
}
