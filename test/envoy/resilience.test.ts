import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, virtualHostInDump, type Dump, type EnvoyWorld } from './support.js';
import { eventually } from '../support/stack.js';

/**
 * Retries, timeouts, circuit breaking, outlier detection and the local rate limit, as a real
 * Envoy 1.40 applies the control plane's config (active health checks: health-checks.test.ts).
 */

const noRetries = { attempts: 0 };

/** Milliseconds `work` takes, with its result. */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

describe('resilience through Envoy 1.40', () => {
  let world: EnvoyWorld;
  const backends: Record<string, TestBackend> = {};
  const otherSpec = (prefix: string) => ({
    domains: ['other.globex.test'],
    routes: [{ match: { prefix } }],
    revisions: [{ name: 'v1', endpoints: [backends.other!.endpoint] }],
  });

  const service = (name: string, spec: Record<string, unknown>, endpoints: TestBackend[]) =>
    world.api.ok('PUT', `/v1/tenants/acme/services/${name}`, {
      domains: [`${name}.acme.test`],
      revisions: [{ name: 'v1', endpoints: endpoints.map((backend) => backend.endpoint) }],
      ...spec,
    });

  beforeAll(async () => {
    for (const name of ['busy', 'spare', 'slow', 'long', 'idle', 'narrow', 'broken', 'sound', 'limited', 'frugal', 'other'])
      backends[name] = await TestBackend.start(name);
    world = await startEnvoyWorld();
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    const b = backends as Record<string, TestBackend>;
    await service('retry', {}, [b.busy!, b.spare!]);
    await service('slow', { timeouts: { request: '1s' }, retries: noRetries }, [b.slow!]);
    // 60 s routes with the default 30 s per try, and 5 s routes with a 1 s per try.
    await service('long', { timeouts: { request: '5s' }, retries: { perTryTimeout: '1s' } }, [b.long!]);
    await service('patient', { timeouts: { request: '60s' } }, [b.long!]);
    await service('idle', { timeouts: { idle: '1s' }, retries: noRetries }, [b.idle!]);
    await service('narrow', { circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1 }, retries: noRetries }, [
      b.narrow!,
    ]);
    await service(
      'outlier',
      { outlierDetection: { consecutive5xx: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 }, retries: noRetries },
      [b.broken!, b.sound!],
    );
    await service('limited', { rateLimit: { requestsPerSecond: 2, burst: 4 } }, [b.limited!]);
    await service('frugal', { rateLimit: { requestsPerSecond: 1, burst: 5 } }, [b.frugal!]);
    await world.api.ok('PUT', '/v1/tenants/globex', { domains: ['globex.test'] });
    await world.api.ok('PUT', '/v1/tenants/globex/services/other', otherSpec('/before'));
    for (const name of ['retry', 'slow', 'long', 'patient', 'idle', 'narrow', 'outlier', 'limited'])
      await world.until(`${name}.acme.test`, '/ready', (a) => a.status === 200);
    await world.until('other.globex.test', '/before', (a) => a.status === 200);
  });
  afterAll(async () => {
    await world?.stop();
    for (const backend of Object.values(backends)) await backend.stop();
  });

  it('retries a 429 on another instance: every request succeeds', async () => {
    const busy = backends.busy as TestBackend;
    busy.failWith = 429;
    // One at a time: concurrent retries beyond circuitBreakers.maxRetries (default 3) are not retried.
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await world.http('retry.acme.test', '/work'));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => echoOf(a).backend))).toEqual(new Set(['spare']));
    // The busy instance did get first attempts: the 200s are retries, not luck of balancing.
    expect(busy.count('/work')).toBeGreaterThan(0);
  });

  it('answers 504 when a route times out, after the set time', async () => {
    const { value, ms } = await timed(() => world.http('slow.acme.test', '/delay/5000'));
    expect(value.status).toBe(504);
    expect(value.body).toBe('upstream request timeout');
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(2500);
  });

  it('never cuts a request by its per-try timeout before the route timeout', async () => {
    const dump = (await world.envoy.configDump()) as Dump;
    const virtualHostOf = (name: string) => virtualHostInDump(dump, `acme_${name}`);
    const actionOf = (name: string) => virtualHostOf(name).routes[0].route;
    const seconds = (d: string | undefined) => (d === undefined ? Infinity : Number.parseFloat(d));
    for (const name of ['patient', 'long']) {
      // A route's own retry policy, else its virtual host's (where every route shares one).
      const policy = actionOf(name).retry_policy ?? virtualHostOf(name).retry_policy;
      expect(seconds(policy.per_try_timeout), name).toBeGreaterThanOrEqual(seconds(actionOf(name).timeout));
    }
    expect(actionOf('patient').timeout).toBe('60s');
    // A request held 2.5 s on a route of 5 s whose spec says 1 s per try is answered, not reset.
    const { value, ms } = await timed(() => world.http('long.acme.test', '/delay/2500'));
    expect(value.status).toBe(200);
    expect(ms).toBeGreaterThanOrEqual(2400);
  });

  it('closes a stream idle longer than the idle timeout (504), but not a busy one', async () => {
    const { value, ms } = await timed(() => world.http('idle.acme.test', '/delay/4000'));
    expect(value.status).toBe(504);
    expect(value.body).toBe('stream timeout');
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(3000);
    // 15 events 100 ms apart: 1.5 s in all, never 1 s without a byte.
    const stream = await world.http('idle.acme.test', '/sse/15');
    expect(stream.status).toBe(200);
    expect(stream.body.match(/^data: /gm)).toHaveLength(15);
  });

  it('sheds requests beyond the circuit breaker with 503 and x-envoy-overloaded', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => world.http('narrow.acme.test', '/delay/500')));
    const overloaded = answers.filter((a) => a.status === 503);
    expect(overloaded.length).toBeGreaterThan(0);
    for (const answer of overloaded) expect(answer.headers['x-envoy-overloaded']).toBe('true');
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(await world.envoy.stat('cluster.sy_acme_narrow_v1.upstream_rq_pending_overflow')).toBeGreaterThan(0);
  });

  it('ejects an instance that keeps failing (outlier detection)', async () => {
    const broken = backends.broken as TestBackend;
    broken.failWith = 500;
    await eventually(async () => {
      await world.http('outlier.acme.test', '/probe');
      expect(await world.envoy.stat('cluster.sy_acme_outlier_v1.outlier_detection.ejections_active')).toBe(1);
    });
    const before = broken.count('/after');
    const answers = await Promise.all(Array.from({ length: 20 }, () => world.http('outlier.acme.test', '/after')));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(broken.count('/after')).toBe(before);
  });

  it('answers 429 beyond the service rate: the burst, then the configured requests per second', async () => {
    const request = () => world.http('limited.acme.test', '/limited');
    // The readiness probe above took a token; wait for a full bucket (4 tokens at 2/s).
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const burst = [];
    for (let i = 0; i < 12; i++) burst.push(await request());
    const allowed = burst.filter((a) => a.status === 200).length;
    // The bucket of 4, plus at most one refill while the 12 requests run.
    expect(allowed).toBeGreaterThanOrEqual(4);
    expect(allowed).toBeLessThanOrEqual(5);
    expect(burst.filter((a) => a.status === 429).length).toBe(12 - allowed);
    // Then 2 per second: 3 s of a request every 50 ms lets about 6 through.
    let passed = 0;
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      if ((await request()).status === 200) passed++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(7);
  });

  it("keeps a service's token bucket while another tenant's routes change", async () => {
    const request = () => world.http('frugal.acme.test', '/');
    // A bucket of 5 at 1 per second: 8 requests leave it empty.
    for (let i = 0; i < 8; i++) await request();
    const drained = performance.now();
    const etag = (await world.api.call('GET', '/v1/tenants/globex/services/other')).etag!;
    await world.api.ok('PUT', '/v1/tenants/globex/services/other', otherSpec('/changed'), { 'if-match': etag });
    await world.until('other.globex.test', '/changed', (a) => a.status === 200);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request()).status);
    const elapsedMs = performance.now() - drained;
    // Only what refilled since the bucket was drained passes; a bucket made anew would let all 5 through.
    expect(elapsedMs).toBeLessThan(3000);
    expect(statuses.filter((status) => status === 200).length, statuses.join(' ')).toBeLessThanOrEqual(Math.floor(elapsedMs / 1000) + 1);
  });
});
