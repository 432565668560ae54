import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, startHarness, type Harness } from './harness.js';

/**
 * A real nats-server stopped and restarted while the API takes writes: each write is retried
 * inside the API for a bounded time, so a short outage (a restart, a leader election) is not
 * a failed request, and a retried create never meets its own earlier attempt as a conflict.
 */
describe('API writes across a nats-server restart', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('accepts every write made while the server restarts, and each is then readable', async () => {
    const outcomes: { name: string; status: number }[] = [];
    let restarted = false;
    const writer = async (id: number) => {
      for (let i = 0; !restarted || i < 3; i++) {
        const name = `w${id}-${i}`;
        const response = await h.call('PUT', `/v1/tenants/${name}`, { token: adminToken, body: { domains: [`${name}.test`] } });
        outcomes.push({ name, status: response.status });
      }
    };
    const writers = [0, 1, 2].map(writer);
    await new Promise((r) => setTimeout(r, 300));
    await h.fixture.server.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await h.fixture.server.restart();
    restarted = true;
    await Promise.all(writers);

    expect(outcomes.filter((o) => o.status !== 201)).toEqual([]);
    for (const { name } of outcomes) expect((await h.call('GET', `/v1/tenants/${name}`, { token: adminToken })).status).toBe(200);
  });

  it('answers 503 with Retry-After once the retry budget is spent', async () => {
    await h.fixture.server.stop();
    const started = Date.now();
    const down = await h.call('PUT', '/v1/tenants/outage', { token: adminToken, body: { domains: ['outage.test'] } });
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(7000);
    expect(Number(down.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(down.body).toMatchObject({ code: 'unavailable', issues: [{ field: '(store)' }] });
    await h.fixture.server.restart();
  });
});
