export { HdsClient, type HdsClientOptions, type AssignedEndpoint, type ClusterCheck, type EnvoyHealthStatus } from './hds-client.js';
