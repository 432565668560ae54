import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, statsSinkEnv } from '@switchyard/shared';

describe('statsSinkEnv', () => {
  it('has defaults for every stats-sink variable', () => {
    expect(loadConfig(statsSinkEnv, {})).toMatchObject({
      STATS_SINK_GRPC_PORT: 18001,
      STATS_SINK_ADMIN_PORT: 9402,
      LOAD_REPORTING_INTERVAL_MS: 1000,
      STATS_STALE_AFTER_MS: 5000,
      STATS_MAX_SERIES: 10_000,
      STATS_MAX_MESSAGE_BYTES: 16 * 1024 * 1024,
      STATS_MAX_STREAM_MESSAGES_PER_S: 20,
      STATS_MAX_CLUSTERS_PER_STREAM: 20_000,
      STATS_MAX_REVISIONS: 50_000,
      STATS_REVISION_IDLE_MS: 600_000,
      STATS_COUNTERS_AS_DELTAS: false,
      LRS_ENDPOINT_GRANULARITY: false,
    });
  });

  it('reads flags as true/false/1/0 and refuses anything else', () => {
    expect(loadConfig(statsSinkEnv, { STATS_COUNTERS_AS_DELTAS: '1', LRS_ENDPOINT_GRANULARITY: 'true' })).toMatchObject({
      STATS_COUNTERS_AS_DELTAS: true,
      LRS_ENDPOINT_GRANULARITY: true,
    });
    expect(loadConfig(statsSinkEnv, { STATS_COUNTERS_AS_DELTAS: 'false' }).STATS_COUNTERS_AS_DELTAS).toBe(false);
    let error: unknown;
    try {
      loadConfig(statsSinkEnv, { STATS_COUNTERS_AS_DELTAS: 'yes', STATS_MAX_MESSAGE_BYTES: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'STATS_COUNTERS_AS_DELTAS',
      'STATS_MAX_MESSAGE_BYTES',
    ]);
  });
});
