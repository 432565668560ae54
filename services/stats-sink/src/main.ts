import { ConfigError, loadConfig, startHost, statsSinkEnv, stopOnSignals } from '@switchyard/shared';
import { createStatsSinkService } from './index.js';

let config;
try {
  config = loadConfig(statsSinkEnv);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}

const host = await startHost({
  name: 'stats-sink',
  services: [createStatsSinkService(config)],
  natsUrl: config.NATS_URL,
  grpcPort: config.STATS_SINK_GRPC_PORT,
  adminPort: config.STATS_SINK_ADMIN_PORT,
  logLevel: config.LOG_LEVEL,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
stopOnSignals(host, host.runtime.logger);
