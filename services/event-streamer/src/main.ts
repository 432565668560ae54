#!/usr/bin/env node
import { eventStreamerEnv, runStandalone } from '@switchyard/shared';
import { createEventStreamerService } from './index.js';

await runStandalone(eventStreamerEnv, (config) => ({
  name: 'event-streamer',
  services: [createEventStreamerService(config)],
  // The tailer runs beside an Envoy and serves no gRPC.
  ...(config.EVENT_STREAMER_MODE === 'server' ? { grpcPort: config.EVENT_STREAMER_GRPC_PORT } : {}),
  adminPort: config.EVENT_STREAMER_ADMIN_PORT,
}));
