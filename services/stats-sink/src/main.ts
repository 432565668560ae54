#!/usr/bin/env node
import { runStandalone, statsSinkEnv } from '@switchyard/shared';
import { createStatsSinkService } from './index.js';

await runStandalone(statsSinkEnv, (config) => ({
  name: 'stats-sink',
  services: [createStatsSinkService(config)],
  grpcPort: config.STATS_SINK_GRPC_PORT,
  adminPort: config.STATS_SINK_ADMIN_PORT,
}));
