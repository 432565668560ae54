#!/usr/bin/env node
import { activatorEnv, runStandalone } from '@switchyard/shared';
import { createActivatorService } from './index.js';

await runStandalone(activatorEnv, (config) => ({
  name: 'activator',
  services: [createActivatorService(config)],
  adminPort: config.ACTIVATOR_ADMIN_PORT,
}));
