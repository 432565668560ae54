#!/usr/bin/env node
import { setTimeout as delay } from 'node:timers/promises';
import { behaviourFromEnv, listenPort } from './behaviour.js';
import { startGrpcEcho } from './grpc-echo.js';

const behaviour = behaviourFromEnv();
await delay(behaviour.startDelayMs ?? 0);
const server = await startGrpcEcho(listenPort(), behaviour);
console.log(JSON.stringify({ msg: 'demo grpc echo listening', port: server.port }));
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
