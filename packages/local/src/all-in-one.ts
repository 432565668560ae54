import {
  activatorEnv,
  autoscalerEnv,
  freePort,
  controlPlaneEnv,
  eventStreamerEnv,
  loadConfig,
  startHost,
  statsSinkEnv,
  type BusIdentity,
  type BusPasswords,
  type Host,
  type ServiceModule,
} from '@switchyard/shared';
import { createControlPlaneService } from '@switchyard/control-plane';
import { createStatsSinkService } from '@switchyard/stats-sink';
import { createEventStreamerService } from '@switchyard/event-streamer';
import { createAutoscalerService } from '@switchyard/autoscaler';
import { createActivatorService } from '@switchyard/activator';

/** Builds one service from the process environment (each reads its own schema, so a bad variable is reported by name). */
export type ServiceFactory = (env: Record<string, string | undefined>) => ServiceModule;

export const controlPlane: ServiceFactory = (env) => createControlPlaneService(loadConfig(controlPlaneEnv, env));
export const statsSink: ServiceFactory = (env) => createStatsSinkService(loadConfig(statsSinkEnv, env));
export const eventStreamer: ServiceFactory = (env) => createEventStreamerService(loadConfig(eventStreamerEnv, env));
export const autoscaler: ServiceFactory = (env) => createAutoscalerService(loadConfig(autoscalerEnv, env));
export const activator: ServiceFactory = (env) => createActivatorService(loadConfig(activatorEnv, env));
/** Every service, in start order: the control plane first so its streams and buckets exist for the others. */
export const allServices: readonly ServiceFactory[] = [controlPlane, statsSink, eventStreamer, autoscaler, activator];

/** Ports of the local Envoy's listeners, as the control plane tells Envoy over LDS (Envoy's documented defaults). */
export interface EnvoyListenerPorts {
  http: number;
  https: number;
}

export const defaultEnvoyListenerPorts: EnvoyListenerPorts = { http: 10000, https: 10443 };

export interface AllInOneOptions {
  natsUrl: string;
  /** Each service's NATS password (user = the service's name); services without one share an anonymous connection. */
  natsPasswords?: Partial<BusPasswords>;
  /** Process environment the services read their settings from; the options below win over it. */
  env: Record<string, string | undefined>;
  services?: readonly ServiceFactory[];
  /** The one gRPC port (xDS, LRS, MetricsService, HDS, Watch); 0 picks a free one. */
  grpcPort: number;
  adminPort: number;
  apiPort: number;
  /** Envoy's listeners on this machine, on `bindHost`, ports as given. */
  envoyListeners?: EnvoyListenerPorts;
  /** Where every port listens (default 127.0.0.1: only local processes reach the plaintext xDS port). */
  bindHost?: string;
}

export interface AllInOne {
  host: Host;
  grpcPort: number;
  /** The environment the services were configured from (for callers that print what is in effect). */
  env: Record<string, string | undefined>;
  stop(): Promise<void>;
}

/**
 * The activator on this machine: its port (a free one unless ACTIVATOR_PORT names one) and the
 * control plane's ACTIVATOR_ADDRESS pointing at it (unless set).
 */
async function localActivator(env: Record<string, string | undefined>): Promise<Record<string, string>> {
  const port = env.ACTIVATOR_PORT !== undefined && env.ACTIVATOR_PORT !== '0' ? env.ACTIVATOR_PORT : String(await freePort());
  return { ACTIVATOR_PORT: port, ACTIVATOR_ADDRESS: env.ACTIVATOR_ADDRESS ?? `127.0.0.1:${port}` };
}

/**
 * Switchyard on one machine: the chosen services in one process (each with a NATS connection and
 * identity of its own when `natsPasswords` names it), one gRPC server (so LRS shares the xDS
 * port, as gRPC clients require) and one admin server.
 * `syctl up` and the end-to-end tests both start the stack through this function.
 */
export async function startAllInOne(options: AllInOneOptions): Promise<AllInOne> {
  const listeners = options.envoyListeners ?? defaultEnvoyListenerPorts;
  const env: Record<string, string | undefined> = {
    ...options.env,
    NATS_URL: options.natsUrl,
    API_PORT: String(options.apiPort),
    ENVOY_LISTENER_ADDRESS: options.env.ENVOY_LISTENER_ADDRESS ?? options.bindHost ?? '127.0.0.1',
    ENVOY_HTTP_PORT: String(listeners.http),
    ENVOY_HTTPS_PORT: String(listeners.https),
    ENVOY_HTTP_PUBLIC_PORT: String(listeners.http),
    ENVOY_HTTPS_PUBLIC_PORT: String(listeners.https),
  };
  const factories = options.services ?? allServices;
  if (factories.includes(activator)) Object.assign(env, await localActivator(env));
  const services = factories.map((factory) => factory(env));
  const common = loadConfig(controlPlaneEnv, env);
  const host = await startHost({
    name: 'all-in-one',
    services,
    natsUrl: options.natsUrl,
    natsCredentials: (service) => {
      const password = options.natsPasswords?.[service as BusIdentity];
      return password === undefined ? undefined : { user: service, password };
    },
    grpcPort: options.grpcPort,
    adminPort: options.adminPort,
    bindHost: options.bindHost ?? '127.0.0.1',
    logLevel: common.LOG_LEVEL,
    otlpEndpoint: common.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  return { host, grpcPort: host.grpcPort, env, stop: () => host.stop() };
}
