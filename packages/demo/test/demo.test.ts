import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrpcEcho, startHttpEcho, runLoad } from '../src/index.js';

describe('demo services and the load generator', () => {
  let grpcEcho: Awaited<ReturnType<typeof startGrpcEcho>>;
  let httpEcho: Awaited<ReturnType<typeof startHttpEcho>>;
  let failing: Awaited<ReturnType<typeof startGrpcEcho>>;
  beforeAll(async () => {
    grpcEcho = await startGrpcEcho(0, { revision: 'blue', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 0 });
    failing = await startGrpcEcho(0, { revision: 'red', host: '127.0.0.1', failRate: 1, unhealthyAfterMs: 0 });
    httpEcho = await startHttpEcho(0, { revision: 'green', host: '127.0.0.1', failRate: 0, unhealthyAfterMs: 1 });
  });
  afterAll(async () => {
    await Promise.all([grpcEcho.close(), failing.close(), httpEcho.close()]);
  });

  it('holds calls open and reports which instance answered', async () => {
    const report = await runLoad({ target: `127.0.0.1:${grpcEcho.port}`, concurrency: 4, durationMs: 300, delayMs: 50 });
    expect(report.failed).toBe(0);
    expect(report.ok).toBeGreaterThanOrEqual(4);
    expect(Object.keys(report.byInstance)).toEqual([`blue 127.0.0.1:${grpcEcho.port}`]);
    expect(report.p50Ms).toBeGreaterThanOrEqual(50);
  });

  it('counts the failures of a revision that fails on purpose', async () => {
    const report = await runLoad({ target: `127.0.0.1:${failing.port}`, concurrency: 2, durationMs: 100, delayMs: 0 });
    expect(report.ok).toBe(0);
    expect(report.failed).toBeGreaterThan(0);
  });

  it('serves HTTP with a health endpoint that can start failing', async () => {
    const report = await runLoad({ target: `http://127.0.0.1:${httpEcho.port}/hello`, concurrency: 2, durationMs: 100, delayMs: 0 });
    expect(report.failed).toBe(0);
    expect(Object.keys(report.byInstance)[0]).toMatch(/^green 127\.0\.0\.1:/);
    const health = await fetch(`http://127.0.0.1:${httpEcho.port}/healthz`);
    expect(health.status).toBe(503);
  });
});
