import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics, Gauge } from 'prom-client';

/**
 * Readiness is a set of named conditions (state loaded, servers listening); the service is
 * ready when all are met. It never turns back to unready on its own: a NATS outage after
 * start shows in /healthz, not /readyz, so a fleet keeps serving its last config.
 */
export class Readiness {
  private readonly pending = new Set<string>();
  private readonly met = new Set<string>();

  require(condition: string): () => void {
    if (!this.met.has(condition)) this.pending.add(condition);
    return () => {
      this.pending.delete(condition);
      this.met.add(condition);
    };
  }

  get ready(): boolean {
    return this.pending.size === 0;
  }

  get waitingFor(): string[] {
    return [...this.pending];
  }
}

/** Liveness details a service reports in /healthz. */
export type HealthReporter = () => Record<string, unknown>;

export interface Observability {
  registry: Registry;
  readiness: Readiness;
  natsConnected: Gauge;
  health: Map<string, HealthReporter>;
}

export function createObservability(service: string): Observability {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'switchyard_process_' });
  const natsConnected = new Gauge({
    name: 'switchyard_nats_connected',
    help: '1 while the NATS connection is up, 0 while it is down (xDS keeps serving the last config).',
    registers: [registry],
  });
  return { registry, readiness: new Readiness(), natsConnected, health: new Map() };
}

export interface AdminServerOptions {
  port: number;
  host?: string;
  observability: Observability;
  /** Extra routes (e.g. the control plane's /v1/nodes for operators). */
  extend?: (app: FastifyInstance) => void;
}

/**
 * Serves /metrics, /healthz and /readyz. In all-in-one mode the four services share one
 * Observability, so metric names are unique per service (switchyard_<service>_…).
 */
export async function startAdminServer(options: AdminServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  const { registry, readiness, health } = options.observability;
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  app.get('/healthz', async () => {
    const checks: Record<string, unknown> = {};
    for (const [name, report] of health) checks[name] = report();
    return { status: 'ok', ...checks };
  });
  app.get('/readyz', async (_req, reply) => {
    const waitingFor = readiness.waitingFor;
    if (waitingFor.length > 0) return reply.code(503).send({ ready: false, waitingFor });
    return { ready: true };
  });
  options.extend?.(app);
  await app.listen({ port: options.port, host: options.host ?? '0.0.0.0' });
  return app;
}
