#!/usr/bin/env node
import { behaviourFromEnv, listenPort } from './behaviour.js';
import { startHttpEcho } from './http-echo.js';

const server = await startHttpEcho(listenPort(), behaviourFromEnv());
console.log(JSON.stringify({ msg: 'demo http echo listening', port: server.port }));
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
