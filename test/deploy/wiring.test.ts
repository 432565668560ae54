import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { checkMessage, lookupType } from '@switchyard/shared';
import { bindMounts, composeFile, loadCompose, serviceEnvironment, switchyardServices, type ComposeService } from './compose.js';
import { renderKustomization, workloads, type Container, type KubeObject } from './kube.js';
import {
  checkServiceEnv,
  requireCommand,
  exists,
  isRecord,
  isServiceName,
  notYetWritten,
  peerFiles,
  readText,
  readYaml,
  repoPath,
  walk,
  type ServiceName,
} from './support.js';

/**
 * How the files other parts of the project write (Envoy bootstrap, Prometheus and Grafana
 * configuration) fit the compose stack and the Kubernetes manifests: host names, ports and
 * mount paths must agree on both sides. Each test skips, naming the file, while it is missing.
 */

const compose = loadCompose();
const kube = renderKustomization().objects;

/** Ports of each Switchyard service as compose configures it (defaults of its config schema plus its environment). */
const composePorts = new Map(
  switchyardServices(compose).map(({ composeName, service, definition }) => [
    composeName,
    checkServiceEnv(service, serviceEnvironment(definition)).ports,
  ]),
);

function kubeServicePorts(name: string): number[] {
  const service = kube.find((o) => o.kind === 'Service' && o.metadata.name === name) as
    (KubeObject & { spec: { ports: { port: number }[] } }) | undefined;
  return service?.spec.ports.map((p) => p.port) ?? [];
}

function requireFile(ctx: TestContext, path: string): void {
  if (!exists(path)) ctx.skip(notYetWritten(path));
}

function composeService(name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`${composeFile} has no service ${name}`);
  return found;
}

type MessageType = ReturnType<typeof lookupType>;

function structValue(value: unknown): unknown {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(value)) return { listValue: { values: value.map(structValue) } };
  if (isRecord(value)) return { structValue: { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structValue(v)])) } };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  return { stringValue: String(value) };
}

/**
 * Envoy reads its bootstrap as proto3 JSON, where a google.protobuf.Struct (a runtime layer, for
 * one) is a free-form object; checkMessage reads protobufjs's object form, where a Struct is
 * `{ fields: { key: Value } }`. Rewrites the Structs, guided by the message type, and leaves
 * everything else (unknown fields included) for checkMessage to judge.
 */
function structsInObjectForm(type: MessageType, value: unknown): unknown {
  const name = type.fullName.replace(/^\./, '');
  if (name === 'google.protobuf.Struct' && isRecord(value)) return (structValue(value) as { structValue: unknown }).structValue;
  if (!isRecord(value)) return value;
  if (name === 'google.protobuf.Any') {
    const { '@type': typeUrl, ...rest } = value;
    return { '@type': typeUrl, ...(structsInObjectForm(lookupType(String(typeUrl)), rest) as object) };
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, fieldValue]) => {
      const field = type.fields[key];
      const resolved = field?.resolve().resolvedType;
      if (field === undefined || resolved === null || !('fields' in resolved)) return [key, fieldValue];
      const convert = (item: unknown) => structsInObjectForm(resolved, item);
      if (field.map && isRecord(fieldValue)) return [key, Object.fromEntries(Object.entries(fieldValue).map(([k, v]) => [k, convert(v)]))];
      if (field.repeated && Array.isArray(fieldValue)) return [key, fieldValue.map(convert)];
      return [key, convert(fieldValue)];
    }),
  );
}

interface SocketAddress {
  address: string;
  port_value: number;
}

describe('the Envoy bootstrap (deploy/envoy/bootstrap.yaml)', () => {
  const load = (ctx: TestContext) => {
    requireFile(ctx, peerFiles.envoyBootstrap);
    return readYaml(peerFiles.envoyBootstrap) as Record<string, unknown>;
  };

  it("decodes as Envoy's envoy.config.bootstrap.v3.Bootstrap with no unknown fields", (ctx) => {
    const bootstrapType = 'envoy.config.bootstrap.v3.Bootstrap';
    expect(checkMessage(bootstrapType, structsInObjectForm(lookupType(bootstrapType), load(ctx)))).toEqual([]);
  });

  it('keeps the admin interface on 127.0.0.1:9901, where the health checks and probes ask', (ctx) => {
    const admin = (load(ctx).admin as { address: { socket_address: SocketAddress } }).address.socket_address;
    expect(admin.address).toBe('127.0.0.1');
    const target = `/dev/tcp/${admin.address}/${admin.port_value}`;
    expect(JSON.stringify(composeService('envoy').healthcheck)).toContain(target);
    const envoy = workloads(kube).find((w) => w.metadata.name === 'envoy');
    const container = envoy?.spec.template.spec.containers[0] as Container;
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect(probe?.exec?.command.join(' ')).toContain(target);
  });

  it('reaches the control plane, stats-sink and event-streamer by the names and ports compose and Kubernetes give them', (ctx) => {
    const clusters = ((load(ctx).static_resources as { clusters?: unknown[] } | undefined)?.clusters ?? []) as Record<string, unknown>[];
    const upstreams = clusters.flatMap((cluster) =>
      [...walk(cluster)]
        .filter((node) => node.key === 'socket_address')
        .map((node) => ({ cluster: String(cluster.name), ...(node.value as SocketAddress) })),
    );
    const reached = new Set<string>();
    for (const upstream of upstreams) {
      if (!isServiceName(upstream.address)) continue;
      reached.add(upstream.address);
      const at = `cluster ${upstream.cluster} → ${upstream.address}:${upstream.port_value}`;
      expect(composePorts.get(upstream.address)?.grpc, `${at}: the compose service's gRPC port`).toBe(upstream.port_value);
      expect(kubeServicePorts(upstream.address), `${at}: a port of the Kubernetes Service`).toContain(upstream.port_value);
    }
    expect([...reached].sort()).toEqual(['control-plane', 'event-streamer', 'stats-sink']);
  });

  it('subscribes over delta ADS', (ctx) => {
    const ads = (load(ctx).dynamic_resources as { ads_config?: { api_type?: string } } | undefined)?.ads_config;
    expect(ads?.api_type).toBe('DELTA_GRPC');
  });

  it('writes event files where the compose event-streamer tails them', (ctx) => {
    const files = [...walk(load(ctx))].filter((n) => n.key === 'event_log_path').map((n) => String(n.value));
    if (files.length === 0) ctx.skip('the bootstrap writes no event files (health-check event sinks may come over HDS instead)');
    const tailed = serviceEnvironment(composeService('event-streamer')).EVENT_TAIL_FILES?.split(',') ?? [];
    for (const file of files) {
      expect(posix.dirname(file), `${file} must be on the volume shared with the event-streamer`).toBe('/var/log/envoy');
      expect(tailed, file).toContain(file);
    }
  });

  it("keeps the overload manager's heap limit below the Envoy pods' memory limit", (ctx) => {
    const heap = [...walk(load(ctx))].find((n) => n.key === 'max_heap_size_bytes');
    if (heap === undefined) ctx.skip('the bootstrap has no fixed_heap resource monitor');
    const envoy = workloads(kube).find((w) => w.metadata.name === 'envoy');
    const limit = envoy?.spec.template.spec.containers[0]?.resources?.limits?.memory ?? '';
    const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
    const [, amount, unit] = /^(\d+)(Ki|Mi|Gi)$/.exec(limit) ?? [];
    expect(Number(heap?.value)).toBeLessThan(Number(amount) * (units[unit as string] as number));
  });
});

describe('the Prometheus configuration (deploy/prometheus/)', () => {
  const prometheus = composeService('prometheus');
  const configTarget = (prometheus.command ?? []).find((a) => a.startsWith('--config.file='))?.slice('--config.file='.length) ?? '';

  it('is mounted where Prometheus reads it', () => {
    expect(bindMounts(prometheus).find((m) => m.source === peerFiles.prometheusConfig)?.target).toBe(configTarget);
  });

  it('scrapes the four services by the names and admin ports compose and Kubernetes give them', (ctx) => {
    requireFile(ctx, peerFiles.prometheusConfig);
    const config = readYaml(peerFiles.prometheusConfig) as { scrape_configs?: { static_configs?: { targets?: string[] }[] }[] };
    const targets = (config.scrape_configs ?? []).flatMap((job) => (job.static_configs ?? []).flatMap((s) => s.targets ?? []));
    const scraped = new Set<ServiceName>();
    for (const target of targets) {
      const [host, port] = target.split(':') as [string, string];
      if (!isServiceName(host)) continue;
      scraped.add(host);
      expect(composePorts.get(host)?.admin, `${target}: the compose service's admin port`).toBe(Number(port));
      expect(kubeServicePorts(host), `${target}: a port of the Kubernetes Service`).toContain(Number(port));
    }
    expect([...scraped].sort()).toEqual(['autoscaler', 'control-plane', 'event-streamer', 'stats-sink']);
  });

  it('loads rule files from where compose mounts them', (ctx) => {
    requireFile(ctx, peerFiles.prometheusConfig);
    const ruleFiles = (readYaml(peerFiles.prometheusConfig) as { rule_files?: string[] }).rule_files ?? [];
    expect(ruleFiles.length).toBeGreaterThan(0);
    const mounted = bindMounts(prometheus).map((m) => m.target);
    for (const file of ruleFiles) expect(mounted, file).toContain(posix.resolve(posix.dirname(configTarget), file));
  });

  it('passes promtool check config', (ctx) => {
    requireFile(ctx, peerFiles.prometheusConfig);
    requireFile(ctx, peerFiles.prometheusAlerts);
    requireCommand('promtool', ['--version'], 'scripts/setup.sh installs it (Debian package prometheus)');
    const result = spawnSync('promtool', ['check', 'config', repoPath(peerFiles.prometheusConfig)], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});

describe('the Grafana provisioning (deploy/grafana/)', () => {
  const grafana = composeService('grafana');
  const yamlFiles = (dir: string) =>
    readdirSync(repoPath(dir))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => `${dir}/${f}`);

  it('is mounted where Grafana reads provisioning', () => {
    expect(bindMounts(grafana).find((m) => m.source === peerFiles.grafanaProvisioning)?.target).toBe('/etc/grafana/provisioning');
  });

  it('points its Prometheus datasource at the compose prometheus service', (ctx) => {
    requireFile(ctx, peerFiles.grafanaDatasources);
    const datasources = yamlFiles(peerFiles.grafanaDatasources).flatMap(
      (file) => (readYaml(file) as { datasources?: { type: string; url: string }[] }).datasources ?? [],
    );
    const prometheus = datasources.filter((d) => d.type === 'prometheus');
    expect(prometheus.length).toBeGreaterThan(0);
    for (const datasource of prometheus) expect(new URL(datasource.url).host).toBe('prometheus:9090');
  });

  it('loads dashboards from the directory compose mounts', (ctx) => {
    requireFile(ctx, peerFiles.grafanaDashboardProviders);
    const providers = yamlFiles(peerFiles.grafanaDashboardProviders).flatMap(
      (file) => (readYaml(file) as { providers?: { options?: { path?: string } }[] }).providers ?? [],
    );
    const dashboardsMount = bindMounts(grafana).find((m) => m.source === peerFiles.grafanaDashboards)?.target;
    expect(providers.length).toBeGreaterThan(0);
    for (const provider of providers) expect(provider.options?.path).toBe(dashboardsMount);
  });

  it('ships dashboards that parse, each with its own uid', (ctx) => {
    requireFile(ctx, peerFiles.grafanaDashboards);
    const files = readdirSync(repoPath(peerFiles.grafanaDashboards)).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    const uids = files.map((f) => {
      const dashboard = JSON.parse(readText(`${peerFiles.grafanaDashboards}/${f}`)) as unknown;
      expect(isRecord(dashboard) && typeof dashboard.title === 'string', f).toBe(true);
      return (dashboard as { uid?: string }).uid;
    });
    expect(uids.every((uid) => typeof uid === 'string')).toBe(true);
    expect(new Set(uids).size).toBe(uids.length);
  });
});
