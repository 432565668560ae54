#!/usr/bin/env node
import { behaviourFromEnv, listenPort } from './behaviour.js';
import { startGrpcEcho } from './grpc-echo.js';

const server = await startGrpcEcho(listenPort(), behaviourFromEnv());
console.log(JSON.stringify({ msg: 'demo grpc echo listening', port: server.port }));
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
