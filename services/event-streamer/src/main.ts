import { ConfigError, eventStreamerEnv, loadConfig, startHost, stopOnSignals, type EventStreamerConfig } from '@switchyard/shared';
import { createEventStreamerService } from './index.js';

let config: EventStreamerConfig;
try {
  config = loadConfig(eventStreamerEnv);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}

const host = await startHost({
  name: 'event-streamer',
  services: [createEventStreamerService(config)],
  natsUrl: config.NATS_URL,
  // The tailer runs beside an Envoy and serves no gRPC.
  ...(config.EVENT_STREAMER_MODE === 'server' ? { grpcPort: config.EVENT_STREAMER_GRPC_PORT } : {}),
  adminPort: config.EVENT_STREAMER_ADMIN_PORT,
  logLevel: config.LOG_LEVEL,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
stopOnSignals(host, host.runtime.logger);
