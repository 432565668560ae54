import { ensureStreams, publish, type ControlPlaneConfig, type Runtime, type ServiceModule } from '@switchyard/shared';
import { createApiServer, natsDeployPublisher, natsStatusPublisher, type ApiServer } from './api/index.js';
import { ConfigStore, EndpointAllowlist } from './store/index.js';
import { XdsCache, registerXdsServices, startXdsWorkers, xdsAccess, type XdsServer, type XdsServerDeps } from './xds/index.js';
import { defaultTranslateOptions, type TranslateOptions } from './translator/index.js';
import { BusInputs } from './controller/bus-inputs.js';
import { TranslationLoop } from './controller/translation-loop.js';
import { NackQuarantine } from './controller/nack-quarantine.js';
import { apiNodes, liveServiceStatus } from './controller/live-status.js';
import { DeploymentController, eventOf } from './deployment/controller.js';
import { defaultPlannerSettings } from './deployment/planner.js';

export interface ControlPlaneOptions {
  translate?: Partial<TranslateOptions>;
  /** How often deployments are re-evaluated. */
  deploymentIntervalMs?: number;
}

export interface ControlPlaneHandle {
  apiUrl: string;
  cache: XdsCache;
}

/**
 * The control plane: desired state from the KV, endpoint sets and health from the bus →
 * translator → xDS cache → every connected Envoy and proxyless gRPC client; plus the
 * management API and the deployment controller. It answers no xDS request before the whole
 * state is loaded and translated (an Envoy must never get an empty or partial config).
 */
export function createControlPlaneService(
  config: ControlPlaneConfig,
  options: ControlPlaneOptions = {},
): ServiceModule & { handle?: ControlPlaneHandle } {
  const module: ServiceModule & { handle?: ControlPlaneHandle } = {
    name: 'control-plane',
    async start(runtime) {
      const { nc, logger, observability } = runtime;
      const registry = observability.registry;
      const stateLoaded = observability.readiness.require('control-plane-state');
      await ensureStreams(nc, { replicas: config.NATS_STREAM_REPLICAS });

      const cache = new XdsCache();
      const quarantine = new NackQuarantine();

      const store = await ConfigStore.open({ nc, logger, registry, replicas: config.NATS_STREAM_REPLICAS });
      const inputs = await BusInputs.start(nc, { logger, registry });
      const translateOptions: TranslateOptions = {
        ...defaultTranslateOptions,
        http: { address: config.ENVOY_LISTENER_ADDRESS, port: config.ENVOY_HTTP_PORT, publicPort: config.ENVOY_HTTP_PUBLIC_PORT },
        https: { address: config.ENVOY_LISTENER_ADDRESS, port: config.ENVOY_HTTPS_PORT, publicPort: config.ENVOY_HTTPS_PUBLIC_PORT },
        reapUnhealthyAfterMs: config.SWITCHYARD_REAP_UNHEALTHY_MS,
        endpointAllowlist: EndpointAllowlist.parse(config.SWITCHYARD_ENDPOINT_CIDRS),
        ...(config.ENVOY_ACTIVE_HEALTH_CHECK_EVENT_LOG === undefined
          ? {}
          : { activeHealthChecks: { eventLogPath: config.ENVOY_ACTIVE_HEALTH_CHECK_EVENT_LOG } }),
        ...(config.ACTIVATOR_ADDRESS ? { activator: config.ACTIVATOR_ADDRESS } : {}),
        ...options.translate,
      };
      const loop = new TranslationLoop(store.view, inputs, cache, translateOptions, quarantine, logger, registry);
      const xds = await serveXds(runtime, cache, config, {
        logger: logger.child({ component: 'xds' }),
        registry,
        maxStreamAgeMs: config.XDS_MAX_CONNECTION_AGE_MS,
        typesFor: xdsAccess({ peersAuthenticated: runtime.grpcPeersAuthenticated, edgeIdentities: config.XDS_EDGE_IDENTITIES }),
        onEvent: (event) => {
          // Core publish: the SWITCHYARD_EVENTS stream stores it, and a NACK storm never waits on acks.
          publish(nc, 'xds', event);
          if (event.typeUrl === undefined || event.version === undefined) return;
          if (event.event === 'ack') quarantine.acked(event.typeUrl, event.version);
          if (event.event !== 'nack') return;
          const held = quarantine.nacked(event.typeUrl, event.version, event.error ?? '', Date.now());
          for (const hold of held) logger.warn({ ...hold }, "a client rejected this service's config; serving its last accepted spec");
          if (held.length > 0) loop.schedule();
        },
      });
      loop.runNow();
      const unsubscribeView = store.view.onChange(() => loop.schedule());
      const unsubscribeInputs = inputs.onChange(() => loop.schedule());
      const unsubscribeLoad = inputs.onLoad((cluster, sample) => loop.observeLoad(cluster, sample));
      stateLoaded();
      logger.info(
        { services: store.view.services().length, tenants: store.view.tenants().length },
        'desired state loaded and translated; serving xDS',
      );

      const now = Date.now;
      const publishStatus = natsStatusPublisher(nc, logger, registry);
      const publishDeployment = natsDeployPublisher(nc, logger, now);
      const deployments = new DeploymentController({
        store,
        inputs,
        logger: logger.child({ component: 'deployments' }),
        publishStatus,
        publishDeployment,
        settings: defaultPlannerSettings,
        intervalMs: options.deploymentIntervalMs ?? 500,
        now,
      });
      deployments.start();

      const api: ApiServer = await createApiServer({
        store,
        config,
        logger,
        registry,
        publishStatus,
        nodes: () => apiNodes(xds.nodes()),
        status: (ref, fromSpec) => liveServiceStatus(ref, fromSpec, { inputs, cache, nodes: () => xds.nodes(), quarantine }),
        translationErrors: (tenant, service) => loop.errorsOf(tenant, service),
        deployments: {
          started: async (deployment) => {
            const minInstances = store.view.service(deployment.tenant, deployment.service)?.record.spec.scaling.minInstances ?? 1;
            await publishDeployment(eventOf(deployment, deployment.previousTraffic, inputs, minInstances, now()));
          },
          apply: (stored, step) => deployments.apply(stored, step),
        },
      });
      const { url } = await api.listen({ port: config.API_PORT, host: runtime.bindHost });
      logger.info({ url }, 'management API listening');
      module.handle = { apiUrl: url, cache };

      return {
        // What every node group is served, resource by resource (operators compare it with an Envoy's /config_dump).
        adminRoutes: (app) => app.get('/v1/xds/resources', async () => cache.served()),
        async stop() {
          deployments.stop();
          unsubscribeView();
          unsubscribeInputs();
          unsubscribeLoad();
          loop.stop();
          await api.close();
          xds.close();
          await inputs.stop();
          await store.close();
        },
      };
    },
  };
  return module;
}

/**
 * The xDS services on the host's gRPC server, and, when the control plane has its process to
 * itself, XDS_WORKERS worker processes that take turns with it in serving connections.
 */
async function serveXds(runtime: Runtime, cache: XdsCache, config: ControlPlaneConfig, deps: XdsServerDeps): Promise<XdsServer> {
  const count = runtime.shareGrpcConnections === undefined ? 0 : config.XDS_WORKERS;
  if (count === 0) return registerXdsServices(runtime.grpcServer, cache, deps);
  const workers = startXdsWorkers(runtime.grpcServer, cache, deps, {
    count,
    settings: {
      security: runtime.grpcSecurity,
      peersAuthenticated: runtime.grpcPeersAuthenticated,
      edgeIdentities: config.XDS_EDGE_IDENTITIES,
      maxStreamAgeMs: config.XDS_MAX_CONNECTION_AGE_MS,
      logLevel: config.LOG_LEVEL,
    },
  });
  runtime.shareGrpcConnections?.(workers.take);
  await workers.ready();
  deps.logger.info({ workers: count }, 'xDS served from worker processes as well as this one');
  return workers.server;
}

export { XdsCache } from './xds/index.js';
export { translate, scopeKeyFilter, scopedRouting } from './translator/index.js';
