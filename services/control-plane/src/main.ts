#!/usr/bin/env node
import { ConfigError, controlPlaneEnv, createLogger, loadConfig, startHost, stopOnSignals } from '@switchyard/shared';
import { createControlPlaneService } from './index.js';

let config;
try {
  config = loadConfig(controlPlaneEnv);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const host = await startHost({
  name: 'control-plane',
  services: [createControlPlaneService(config)],
  natsUrl: config.NATS_URL,
  grpcPort: config.CONTROL_PLANE_GRPC_PORT,
  adminPort: config.CONTROL_PLANE_ADMIN_PORT,
  logLevel: config.LOG_LEVEL,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
stopOnSignals(host, createLogger('control-plane', config.LOG_LEVEL));
