import { createHash, randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AutoscalerConfig, Logger, ServiceModule } from '@switchyard/shared';
import { Autoscaler } from './autoscaler.js';
import { staticProvider, type InstanceProvider } from './provider.js';
import { localProvider } from './providers/local.js';

export { Autoscaler, leaseKey, type AutoscalerOptions } from './autoscaler.js';
export { decide, initialDeciderState, type Decision, type DeciderSettings, type DeciderState } from './decider/decider.js';
export { revisionPlans, type RevisionPlan } from './revision-plans.js';
export { LeaderLease } from './lease.js';
export { localProvider, type LocalProviderOptions } from './providers/local.js';
export {
  staticProvider,
  notRunnableReason,
  type InstanceProvider,
  type InstanceView,
  type RevisionInstances,
  type RevisionHooks,
} from './provider.js';

/**
 * The autoscaler as a service module: standalone (src/main.ts) or next to the other
 * services in one host. Its admin route `GET /v1/autoscaler` shows the lease, every
 * revision's instances and last decision, and the revisions the provider cannot run.
 */
export function createAutoscalerService(config: AutoscalerConfig): ServiceModule {
  return {
    name: 'autoscaler',
    async start(runtime) {
      const logger = runtime.logger;
      const provider = await instanceProvider(config, logger);
      const autoscaler = new Autoscaler({
        nc: runtime.nc,
        logger,
        registry: runtime.observability.registry,
        readiness: runtime.observability.readiness,
        provider,
        holder: `${config.AUTOSCALER_REPLICA_ID ?? hostname()}#${process.pid}-${randomBytes(3).toString('hex')}`,
        leaseTtlMs: config.AUTOSCALER_LEASE_TTL_MS,
        drainTimeoutMs: config.DRAIN_TIMEOUT_MS,
        maxClockSkewMs: config.LOAD_MAX_CLOCK_SKEW_MS,
        streamReplicas: config.NATS_STREAM_REPLICAS,
      });
      await autoscaler.start();
      runtime.observability.health.set('autoscaler', () => ({ leader: autoscaler.isLeader, provider: provider.name }));
      return {
        adminRoutes: (app) => {
          app.get('/v1/autoscaler', async () => autoscaler.describe());
        },
        stop: () => autoscaler.stop(),
      };
    },
  };
}

/** The configured provider; the Kubernetes client is loaded only when it is the one. */
async function instanceProvider(config: AutoscalerConfig, logger: Logger): Promise<InstanceProvider> {
  switch (config.INSTANCE_PROVIDER) {
    case 'local':
      return localProvider({
        host: config.LOCAL_INSTANCE_HOST,
        stateDir: config.LOCAL_STATE_DIR ?? defaultLocalStateDir(config.NATS_URL),
        startTimeoutMs: config.INSTANCE_START_TIMEOUT_MS,
        stopTimeoutMs: config.INSTANCE_STOP_TIMEOUT_MS,
        tenantUids: { base: config.LOCAL_INSTANCE_UID_BASE, count: config.LOCAL_INSTANCE_UID_COUNT },
        logger: logger.child({ provider: 'local' }),
      });
    case 'kubernetes': {
      const { kubernetesProvider, loadKubeConfig } = await import('./providers/kubernetes.js');
      return kubernetesProvider({
        kubeConfig: loadKubeConfig(config.KUBECONFIG),
        namespacePrefix: config.KUBERNETES_NAMESPACE_PREFIX,
        containerPort: config.KUBERNETES_CONTAINER_PORT,
        pod: { cpu: config.KUBERNETES_POD_CPU, memory: config.KUBERNETES_POD_MEMORY },
        quota: { pods: config.KUBERNETES_TENANT_PODS, cpu: config.KUBERNETES_TENANT_CPU, memory: config.KUBERNETES_TENANT_MEMORY },
        startTimeoutMs: config.INSTANCE_START_TIMEOUT_MS,
        logger: logger.child({ provider: 'kubernetes' }),
      });
    }
    case 'static':
      return staticProvider;
  }
}

/** One state directory per user and installation (NATS_URL): two Switchyards on one machine never adopt or stop each other's instances. */
function defaultLocalStateDir(natsUrl: string): string {
  const installation = createHash('sha256').update(natsUrl).digest('hex').slice(0, 12);
  return join(tmpdir(), `switchyard-local-${process.getuid?.() ?? 'user'}`, installation);
}
