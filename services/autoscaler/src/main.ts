import { ConfigError, autoscalerEnv, loadConfig, startHost, stopOnSignals, type AutoscalerConfig } from '@switchyard/shared';
import { createAutoscalerService } from './index.js';

let config: AutoscalerConfig;
try {
  config = loadConfig(autoscalerEnv);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

const host = await startHost({
  name: 'autoscaler',
  services: [createAutoscalerService(config)],
  natsUrl: config.NATS_URL,
  adminPort: config.AUTOSCALER_ADMIN_PORT,
  logLevel: config.LOG_LEVEL,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
stopOnSignals(host, host.runtime.logger);
