export { ConfigStore, RecordTooLarge, RevisionConflict, type ConfigStoreOptions, type WriteCondition } from './config-store.js';
export { StoreUnavailable, isTransientStoreError, defaultRetryPolicy, type RetryPolicy } from './write-retry.js';
export {
  ConfigView,
  type ConfigChange,
  type ChangeListener,
  type ConfigEntry,
  type ApplyOutcome,
  type Versioned,
  type StoredTenant,
  type StoredService,
  type StoredToken,
  type StoredDeployment,
  type InvalidEntry,
} from './config-view.js';
export { ConfigWatcher, type ConfigWatcherOptions } from './config-watcher.js';
export {
  EndpointAllowlist,
  parseImageRegistries,
  imageAllowed,
  checkService,
  checkTenantGrant,
  type Issue,
  type PolicyResult,
  type TenantGrant,
  type ServiceDomains,
} from './policy.js';
export { registryCounter } from './metrics.js';
