/**
 * The xDS protocol engine: a cache of Envoy resources per node group (encoded once per
 * version) and the gRPC services that deliver them — ADS and per-type, State of the World and
 * delta. The translator fills the cache with setSnapshot; the wiring registers the services
 * on the host's gRPC server and serves `nodes()` on the admin API.
 */
export { XdsCache, nodeGroupOf, diffResources, type SnapshotChanges, type CacheListener, type ResourceBatch } from './cache.js';
export { xdsAccess, typesForIdentities, everyType, type XdsAccessSettings } from './access.js';
export { registerXdsServices, type XdsServer, type XdsServerDeps } from './server.js';
export { startXdsWorkers, type XdsWorkers, type XdsWorkerOptions } from './workers.js';
export type { NodeStatus, TypeDelivery } from './node-status.js';
export type { DeliveryStatus } from './stream.js';
export { pushOrder, typeNames, isFullSetType, type TypeName, type NodeInfo, type XdsMode } from './types.js';
