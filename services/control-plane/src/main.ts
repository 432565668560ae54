#!/usr/bin/env node
import { controlPlaneEnv, runStandalone } from '@switchyard/shared';
import { createControlPlaneService } from './index.js';

await runStandalone(controlPlaneEnv, (config) => ({
  name: 'control-plane',
  services: [createControlPlaneService(config)],
  grpcPort: config.CONTROL_PLANE_GRPC_PORT,
  adminPort: config.CONTROL_PLANE_ADMIN_PORT,
}));
