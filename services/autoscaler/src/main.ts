#!/usr/bin/env node
import { autoscalerEnv, runStandalone } from '@switchyard/shared';
import { createAutoscalerService } from './index.js';

await runStandalone(autoscalerEnv, (config) => ({
  name: 'autoscaler',
  services: [createAutoscalerService(config)],
  adminPort: config.AUTOSCALER_ADMIN_PORT,
}));
