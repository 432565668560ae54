/** The translator's public API: desired state in, one complete resource set per node group out. */
export { translate, grpcRouteConfigName } from './translate.js';
export { serviceKey } from './build-ir.js';
export {
  defaultTranslateOptions,
  endpointKey,
  type BurstEntry,
  type DesiredState,
  type EndpointHealth,
  type EndpointPolicy,
  type HealthState,
  type ListenerOptions,
  type TranslateOptions,
  type TranslationError,
  type TranslationResult,
} from './desired-state.js';
export { EnvoyListener } from './envoy/listeners.js';
export { scopeKeyFilter, scopedRouting } from './envoy/scopes.js';
export { burstState, inFlight } from './endpoints.js';
export { recordEndpointSet, recordHealth } from './inputs.js';
