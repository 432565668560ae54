export { NatsServer, waitForPort, type NatsServerOptions, type ClusterMembership } from './nats-server.js';
export { NatsCluster, type NatsClusterOptions } from './nats-cluster.js';
export { freePort } from '../net.js';
