import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, statsSinkEnv, controlPlaneEnv } from '../src/config.js';

describe('loadConfig', () => {
  it('fills defaults', () => {
    const config = loadConfig(controlPlaneEnv, {});
    expect(config.CONTROL_PLANE_GRPC_PORT).toBe(18000);
    expect(config.API_PORT).toBe(8080);
    expect(config.NATS_URL).toBe('nats://127.0.0.1:4222');
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig(statsSinkEnv, { STATS_SINK_GRPC_PORT: 'abc', LOAD_REPORTING_INTERVAL_MS: '-5', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('STATS_SINK_GRPC_PORT');
    expect(problems).toContain('LOAD_REPORTING_INTERVAL_MS');
    expect(problems).toContain('LOG_LEVEL');
    expect(problems).toContain('"loud"');
  });
});
