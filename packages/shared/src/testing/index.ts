export { NatsServer, waitForPort, type NatsServerOptions } from './nats-server.js';
export { freePort } from '../net.js';
