export { HdsClient, type HdsClientOptions, type AssignedEndpoint, type ClusterCheck, type EnvoyHealthStatus } from './hds-client.js';
export { HdsProber } from './hds-prober.js';
