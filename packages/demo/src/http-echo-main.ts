#!/usr/bin/env node
import { setTimeout as delay } from 'node:timers/promises';
import { behaviourFromEnv, listenPort } from './behaviour.js';
import { startHttpEcho } from './http-echo.js';

const behaviour = behaviourFromEnv();
await delay(behaviour.startDelayMs ?? 0);
const server = await startHttpEcho(listenPort(), behaviour);
console.log(JSON.stringify({ msg: 'demo http echo listening', port: server.port }));
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
