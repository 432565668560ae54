/**
 * Knobs that make a demo instance misbehave on purpose, read from its environment so a
 * revision's spec can set them: how the end-to-end tests produce 5xx canaries and failing
 * health checks with real processes.
 */
export interface DemoBehaviour {
  revision: string;
  /** Address to listen on: HOST as the local provider sets it (the pod IP in a cluster), else loopback. */
  host: string;
  /** Fraction of requests answered with an error (HTTP 503 / gRPC UNAVAILABLE, as a failing instance would). */
  failRate: number;
  /** Milliseconds after start when the health endpoint starts failing; 0 = never. */
  unhealthyAfterMs: number;
  /**
   * A directory where a file named `<port>.unhealthy` makes this one instance fail its health
   * checks (gRPC: it stops accepting new connections, so TCP checks fail while calls on open
   * connections still finish). Lets a test break exactly one instance of a revision.
   */
  chaosDir?: string;
  /** Milliseconds to wait before listening, as an application loading its code would (START_DELAY_MS). */
  startDelayMs?: number;
}

export function behaviourFromEnv(env: NodeJS.ProcessEnv = process.env): DemoBehaviour {
  return {
    revision: env.REVISION ?? env.SWITCHYARD_REVISION ?? 'unknown',
    host: env.HOST ?? '127.0.0.1',
    failRate: clampRate(Number(env.FAIL_RATE ?? 0)),
    unhealthyAfterMs: Math.max(0, Number(env.UNHEALTHY_AFTER_MS ?? 0) || 0),
    ...(env.CHAOS_DIR ? { chaosDir: env.CHAOS_DIR } : {}),
    startDelayMs: Math.max(0, Number(env.START_DELAY_MS ?? 0) || 0),
  };
}

function clampRate(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

export function listenPort(env: NodeJS.ProcessEnv = process.env): number {
  const port = Number(env.PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${env.PORT}`);
  return port;
}
