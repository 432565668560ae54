import { startHttpEcho } from '@switchyard/demo';
import {
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  openStreamReader,
  streams,
  subjectPattern,
  subscribe,
  type HealthTransition,
  type NatsConnection,
} from '@switchyard/shared';
import { Api, httpEchoCommand } from '../support/stack.js';
import type { SwitchyardSystem } from './system.js';

/**
 * What runs against the system while components die: requests through Envoy to a service on
 * static backends (they never die, so every failure is the system's) and to a managed,
 * autoscaled one; API writes, each acknowledged one remembered; and every endpoint set seen on
 * the bus, checked against what JetStream kept.
 */

export const tenant = 'chaos';
export const steadyDomain = 'steady.chaos.test';
export const scaledDomain = 'scaled.chaos.test';

export interface TrafficTally {
  sent: number;
  failed: number;
  errors: string[];
}

/** `concurrency` request loops through Envoy to `domain`, each request held `delayMs` by the backend. */
export class Traffic {
  readonly tally: TrafficTally = { sent: 0, failed: 0, errors: [] };
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly system: SwitchyardSystem,
    private readonly domain: string,
    concurrency: number,
    private readonly delayMs: number,
  ) {
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  async stop(): Promise<TrafficTally> {
    this.stopped = true;
    await Promise.all(this.loops);
    return this.tally;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.tally.sent++;
      try {
        const answer = await this.system.http(this.domain, `/load?delay_ms=${this.delayMs}`, { timeoutMs: 15_000 });
        if (answer.status !== 200) this.fail(`${answer.status} ${answer.body.slice(0, 80)}`);
      } catch (err) {
        this.fail(String((err as Error).message ?? err));
      }
    }
  }

  private fail(reason: string): void {
    this.tally.failed++;
    if (this.tally.errors.length < 20) this.tally.errors.push(`${new Date().toISOString()} ${reason}`);
  }
}

/** Creates services through the API, one every `everyMs`, alternating between the control-plane replicas. */
export class Writer {
  readonly acknowledged: string[] = [];
  attempts = 0;
  refused = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly system: SwitchyardSystem,
    private readonly backendPort: number,
    everyMs: number,
  ) {
    this.loop = this.run(everyMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /**
   * The acknowledged writes no replica reads back within `withinMs`: each replica serves reads
   * from its own view of the bucket, which may trail a write another replica took.
   */
  async lost(withinMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + withinMs;
    let missing = [...this.acknowledged];
    for (;;) {
      const still: string[] = [];
      for (const path of missing) if (!(await this.readable(path))) still.push(path);
      missing = still;
      if (missing.length === 0 || Date.now() > deadline) return missing;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private async readable(path: string): Promise<boolean> {
    for (const url of this.system.apiUrls) {
      const res = await new Api(url).call('GET', path).catch(() => undefined);
      if (res?.status === 200) return true;
    }
    return false;
  }

  private async run(everyMs: number): Promise<void> {
    for (let n = 1; !this.stopped; n++) {
      const urls = this.system.apiUrls;
      const api = new Api(urls[n % urls.length] as string);
      const path = `/v1/tenants/${tenant}/services/w-${n}`;
      this.attempts++;
      const res = await api
        .call('PUT', path, {
          domains: [`w-${n}.${tenant}.test`],
          revisions: [{ name: 'main', endpoints: [{ address: '127.0.0.1', port: this.backendPort }] }],
        })
        .catch(() => undefined);
      if (res !== undefined && res.status >= 200 && res.status < 300) this.acknowledged.push(path);
      else this.refused++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

/**
 * Remembers the highest generation seen per endpoint-set subject (`lost()` names subjects whose
 * stream holds less) and every health transition published.
 */
export class BusAudit {
  private readonly seen = new Map<string, number>();
  readonly transitions: HealthTransition[] = [];

  private constructor(private readonly nc: NatsConnection) {}

  static async start(system: SwitchyardSystem): Promise<BusAudit> {
    const logger = createLogger('audit', 'silent');
    const observability = createObservability('audit');
    const nc = await connectNats({ servers: system.nats.servers, name: 'audit', logger, observability });
    const audit = new BusAudit(nc);
    const deps = { logger, registry: observability.registry };
    subscribe(nc, 'endpoints', subjectPattern('endpoints'), deps, (m) => {
      audit.seen.set(m.subject, Math.max(audit.seen.get(m.subject) ?? 0, m.payload.generation));
    });
    subscribe(nc, 'health', subjectPattern('health'), deps, (m) => {
      audit.transitions.push(m.payload);
    });
    return audit;
  }

  get subjects(): number {
    return this.seen.size;
  }

  async lost(): Promise<string[]> {
    const stored = new Map<string, number>();
    const { js } = await ensureStreams(this.nc, { replicas: 3 });
    const reader = await openStreamReader(js, {
      stream: streams.endpoints.name,
      filter: subjectPattern('endpoints'),
      replay: { from: 'last_per_subject' },
    });
    let remaining = reader.backlog;
    if (remaining > 0) {
      for await (const msg of reader.messages) {
        const generation = (JSON.parse(new TextDecoder().decode(msg.data)) as { generation: number }).generation;
        stored.set(msg.subject, Math.max(stored.get(msg.subject) ?? 0, generation));
        msg.ack();
        if (--remaining === 0) break;
      }
    }
    await reader.stop();
    return [...this.seen].filter(([subject, generation]) => (stored.get(subject) ?? 0) < generation).map(([subject]) => subject);
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** The tenant, a service on two static backends, and an autoscaled one running the HTTP echo demo. */
export async function setUpServices(system: SwitchyardSystem): Promise<{ backends: { port: number; close(): Promise<void> }[] }> {
  const behaviour = { revision: 'steady', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 };
  const backends = [await startHttpEcho(0, behaviour), await startHttpEcho(0, behaviour)];
  const api = new Api(system.apiUrls[0] as string);
  await api.ok('PUT', `/v1/tenants/${tenant}`, { domains: [`${tenant}.test`] });
  await api.ok('PUT', `/v1/tenants/${tenant}/services/steady`, {
    domains: [steadyDomain],
    healthCheck: { protocol: 'http', path: '/healthz', interval: '1s', timeout: '500ms' },
    revisions: [{ name: 'main', endpoints: backends.map((b) => ({ address: '127.0.0.1', port: b.port })) }],
  });
  await api.ok('PUT', `/v1/tenants/${tenant}/services/scaled`, {
    domains: [scaledDomain],
    healthCheck: { protocol: 'http', path: '/healthz', interval: '1s', timeout: '500ms' },
    scaling: { minInstances: 1, maxInstances: 4, maxConcurrency: 2, stableWindow: '6s', panicWindow: '2s' },
    revisions: [{ name: 'v1', command: httpEchoCommand, env: { REVISION: 'v1' } }],
  });
  return { backends };
}

/** Waits until `domain` answers 200 through Envoy. */
export async function untilServing(system: SwitchyardSystem, domain: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await system.http(domain, '/').catch(() => undefined);
    if (answer?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${domain} not served through Envoy within ${timeoutMs} ms (last: ${answer?.status})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
