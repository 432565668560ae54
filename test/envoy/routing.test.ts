import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, type EnvoyWorld } from './support.js';

/**
 * Routing as a real Envoy (1.40, delta ADS) applies the control plane's config: hosts, paths,
 * header and query matchers, a weighted split and a live traffic change. Each answer comes from
 * a TestBackend that names itself, so the test sees which revision Envoy chose.
 */
describe('routing through Envoy', () => {
  let world: EnvoyWorld;
  const backends: Record<string, TestBackend> = {};
  const endpoints = (name: string) => [backends[name]!.endpoint];

  /** Sends `count` GETs, `concurrency` at a time, and counts answers per backend (non-200 under their status). */
  async function tally(domain: string, count: number, concurrency = 16): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < count) {
        sent++;
        const answer = await world.http(domain, '/');
        const key = answer.status === 200 ? echoOf(answer).backend : `status ${answer.status}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return counts;
  }

  beforeAll(async () => {
    for (const name of ['www', 'wild', 'match', 'blue', 'green']) backends[name] = await TestBackend.start(name);
    world = await startEnvoyWorld();
    const put = (service: string, spec: unknown) => world.api.ok('PUT', `/v1/tenants/acme/services/${service}`, spec);
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await put('www', { domains: ['www.acme.test'], revisions: [{ name: 'v1', endpoints: endpoints('www') }] });
    await put('wild', { domains: ['*.apps.acme.test'], revisions: [{ name: 'v1', endpoints: endpoints('wild') }] });
    await put('match', {
      domains: ['match.acme.test'],
      revisions: [{ name: 'v1', endpoints: endpoints('match') }],
      routes: [
        { match: { path: '/exact' } },
        { match: { prefix: '/api/' } },
        { match: { regex: '/items/[0-9]+' } },
        { match: { prefix: '/h/exact', headers: [{ name: 'X-Test', exact: 'yes' }] } },
        { match: { prefix: '/h/prefix', headers: [{ name: 'X-Test', prefix: 'abc' }] } },
        { match: { prefix: '/h/range', headers: [{ name: 'X-Test', range: { start: 10, end: 20 } }] } },
        { match: { prefix: '/h/present', headers: [{ name: 'X-Test', present: true }] } },
        { match: { prefix: '/h/invert', headers: [{ name: 'X-Test', exact: 'prod', invert: true }] } },
        { match: { prefix: '/q/exact', queryParams: [{ name: 'v', exact: '1' }] } },
        { match: { prefix: '/q/prefix', queryParams: [{ name: 'v', prefix: 'ab' }] } },
        { match: { prefix: '/q/regex', queryParams: [{ name: 'v', regex: '[0-9]{3}' }] } },
        { match: { prefix: '/q/present', queryParams: [{ name: 'v', present: true }] } },
      ],
    });
    await put('split', {
      domains: ['split.acme.test'],
      revisions: [
        { name: 'blue', endpoints: endpoints('blue') },
        { name: 'green', endpoints: endpoints('green') },
      ],
      traffic: [
        { revision: 'blue', percent: 80 },
        { revision: 'green', percent: 20 },
      ],
    });
    // Every service is in Envoy once the last one answers.
    await world.until('split.acme.test', '/', (a) => a.status === 200);
  });

  afterAll(async () => {
    await world?.stop();
    await Promise.all(Object.values(backends).map((b) => b.stop()));
  });

  it('routes exact and wildcard domains, and answers 404 for unknown hosts', async () => {
    const backendFor = async (host: string) => {
      const answer = await world.http(host, '/');
      return answer.status === 200 ? echoOf(answer).backend : answer.status;
    };
    expect(await backendFor('www.acme.test')).toBe('www');
    expect(await backendFor('www.acme.test:8080')).toBe('www'); // the port is stripped before matching
    expect(await backendFor('WWW.Acme.Test')).toBe('www'); // host names match whatever their case
    expect(await backendFor('a.apps.acme.test')).toBe('wild');
    expect(await backendFor('b.apps.acme.test')).toBe('wild');
    expect(await backendFor('x.y.apps.acme.test')).toBe('wild'); // a wildcard covers any number of labels
    expect(await backendFor('A.Apps.ACME.test')).toBe('wild');
    expect(await backendFor('apps.acme.test')).toBe(404); // *.apps.acme.test does not cover its parent
    expect(await backendFor('other.acme.test')).toBe(404);
    expect(await backendFor('www.globex.test')).toBe(404);
  });

  it.each([
    ['/exact', {}, 200],
    ['/exact/more', {}, 404],
    ['/exactly', {}, 404],
    ['/api/users', {}, 200],
    ['/api', {}, 404],
    ['/items/42', {}, 200],
    ['/items/42x', {}, 404], // the regex must match the whole path
    ['/items/abc', {}, 404],
    ['/h/exact', { 'x-test': 'yes' }, 200],
    ['/h/exact', { 'x-test': 'yes!' }, 404],
    ['/h/exact', {}, 404],
    ['/h/prefix', { 'x-test': 'abcdef' }, 200],
    ['/h/prefix', { 'x-test': 'xabc' }, 404],
    ['/h/range', { 'x-test': '10' }, 200],
    ['/h/range', { 'x-test': '19' }, 200],
    ['/h/range', { 'x-test': '20' }, 404], // the end is exclusive
    ['/h/range', { 'x-test': 'ten' }, 404],
    ['/h/present', { 'x-test': '' }, 200],
    ['/h/present', {}, 404],
    ['/h/invert', { 'x-test': 'staging' }, 200],
    ['/h/invert', { 'x-test': 'prod' }, 404],
    ['/h/invert', {}, 404], // Envoy: an inverted value matcher still needs the header
    ['/q/exact?v=1', {}, 200],
    ['/q/exact?v=12', {}, 404],
    ['/q/exact?w=1', {}, 404],
    ['/q/prefix?v=abc', {}, 200],
    ['/q/prefix?v=b', {}, 404],
    ['/q/regex?v=123', {}, 200],
    ['/q/regex?v=1234', {}, 404],
    ['/q/present?x=1&v', {}, 200],
    ['/q/present?x=1', {}, 404],
  ] as const)('GET %s with headers %j answers %i', async (path, headers, status) => {
    const answer = await world.http('match.acme.test', path, { headers });
    expect(answer.status).toBe(status);
    if (status === 200) expect(echoOf(answer)).toMatchObject({ backend: 'match', path });
  });

  it('splits 80/20 between revisions within ±5 points over 2,000 requests', async () => {
    const counts = await tally('split.acme.test', 2000);
    expect([...counts.keys()].sort()).toEqual(['blue', 'green']);
    const bluePercent = (100 * counts.get('blue')!) / 2000;
    console.log(`80/20 split through Envoy: blue ${bluePercent.toFixed(1)} %, green ${(100 - bluePercent).toFixed(1)} % of 2,000`);
    expect(bluePercent).toBeGreaterThanOrEqual(75);
    expect(bluePercent).toBeLessThanOrEqual(85);
  });

  it('applies a traffic change, and says how long Envoy took', async () => {
    // Envoy is probed from the moment the PUT is sent; the change is in effect from the first
    // of 20 answers in a row from green (0.2^20 by chance under 80/20).
    const started = performance.now();
    let answeredAt = 0;
    const put = world.api
      .ok('PUT', '/v1/tenants/acme/services/split/traffic', {
        traffic: [
          { revision: 'blue', percent: 0 },
          { revision: 'green', percent: 100 },
        ],
      })
      .then(() => (answeredAt = performance.now()));
    let streakStart = 0;
    let streak = 0;
    while (streak < 20) {
      if (performance.now() - started > 10_000) throw new Error('traffic change not applied within 10 s');
      const sentAt = performance.now();
      const answer = await world.http('split.acme.test', '/');
      if (answer.status === 200 && echoOf(answer).backend === 'green') {
        if (streak++ === 0) streakStart = sentAt;
      } else streak = 0;
    }
    await put;
    console.log(
      `traffic change applied by Envoy ${(streakStart - started).toFixed(0)} ms after the PUT was sent ` +
        `(the API answered after ${(answeredAt - started).toFixed(0)} ms)`,
    );
    expect(await tally('split.acme.test', 200)).toEqual(new Map([['green', 200]]));
  });
});
