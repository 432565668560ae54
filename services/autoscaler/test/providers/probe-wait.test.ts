import { describe, expect, it } from 'vitest';
import { probeWaitMs } from '../../src/providers/local.js';

describe('probeWaitMs: readiness probes of a starting instance', () => {
  it.each([
    { elapsedMs: 0, intervalMs: 100, wait: 2 },
    { elapsedMs: 30, intervalMs: 100, wait: 2 },
    { elapsedMs: 100, intervalMs: 100, wait: 5 },
    { elapsedMs: 1000, intervalMs: 100, wait: 50 },
    { elapsedMs: 5000, intervalMs: 100, wait: 100 },
    { elapsedMs: 5000, intervalMs: 50, wait: 50 },
  ])('after $elapsedMs ms (interval $intervalMs ms) waits $wait ms', ({ elapsedMs, intervalMs, wait }) => {
    expect(probeWaitMs(elapsedMs, intervalMs)).toBe(wait);
  });
});
