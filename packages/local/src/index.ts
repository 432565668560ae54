export {
  activator,
  allServices,
  autoscaler,
  controlPlane,
  defaultEnvoyListenerPorts,
  eventStreamer,
  startAllInOne,
  statsSink,
  type AllInOne,
  type AllInOneOptions,
  type EnvoyListenerPorts,
  type ServiceFactory,
} from './all-in-one.js';
export { findEnvoy, parseEnvoyVersion, projectEnvoy, repoRoot, type EnvoyBinary } from './envoy/find.js';
export {
  deployBootstrap,
  localBootstrap,
  type BootstrapDocument,
  type GrpcAddress,
  type LocalBootstrapOptions,
} from './envoy/bootstrap.js';
export { EnvoyProcess, type EnvoyConfigDump, type EnvoyStartOptions } from './envoy/process.js';
