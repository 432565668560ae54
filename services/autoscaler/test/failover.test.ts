import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buckets,
  configKeys,
  connectNats,
  createLogger,
  createObservability,
  ensureStreams,
  freePort,
  openBucket,
  subscribe,
  type EndpointSet,
  type NatsConnection,
} from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { Autoscaler } from '../src/autoscaler.js';
import { localProvider } from '../src/providers/local.js';
import { httpGet, instancePid, instanceServer, processRunning, serviceRecordFor, until } from './helpers.js';

/**
 * Two replicas on one machine, one killed: replica A is the real standalone autoscaler
 * (dist/src/main.js, built by `pnpm build`) in its own process, replica B runs in this process;
 * both share LOCAL_STATE_DIR. SIGKILL on A must hand the revision to B within a few seconds,
 * and B must adopt A's instances, which kept serving, rather than start new ones.
 */

const logger = createLogger('failover-test', 'silent');
const standalone = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const leaseTtlMs = 2000;

describe('leader failover between two autoscaler replicas', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let processA: ChildProcess | undefined;
  let replicaB: { autoscaler: Autoscaler; nc: NatsConnection } | undefined;
  const sets: EndpointSet[] = [];
  let stateDir = '';

  beforeAll(async () => {
    if (!existsSync(standalone)) throw new Error(`${standalone} is missing: run "pnpm build" first`);
    server = await NatsServer.start();
    stateDir = join(await mkdtemp(join(tmpdir(), 'switchyard-failover-')), 'instances');
    nc = await connectNats({ servers: server.url, name: 'driver', logger, observability: createObservability('driver') });
    await ensureStreams(nc);
    subscribe(nc, 'endpoints', 'switchyard.endpoints.>', { logger, registry: createObservability('rec').registry }, (m) => {
      sets.push(m.payload);
    });
  });

  afterAll(async () => {
    processA?.kill('SIGKILL');
    await replicaB?.autoscaler.stop();
    await replicaB?.nc.close();
    await nc.close();
    await server.dispose();
    await rm(dirname(stateDir), { recursive: true, force: true });
  });

  it('hands over within a few seconds when the leader process is killed', async () => {
    const config = await openBucket(nc, buckets.config);
    const record = serviceRecordFor('acme', 'failover', {
      domains: ['failover.example.com'],
      healthCheck: { protocol: 'http', path: '/healthz' },
      scaling: { minInstances: 2 },
      revisions: [{ name: 'v1', command: [process.execPath, instanceServer] }],
    });
    await config.put(configKeys.service('acme', 'failover'), JSON.stringify(record));

    const adminPort = await freePort();
    processA = spawn(process.execPath, [standalone], {
      env: {
        PATH: process.env.PATH,
        NATS_URL: server.url,
        AUTOSCALER_ADMIN_PORT: String(adminPort),
        AUTOSCALER_REPLICA_ID: 'replica-a',
        AUTOSCALER_LEASE_TTL_MS: String(leaseTtlMs),
        LOCAL_STATE_DIR: stateDir,
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const ready = (set: EndpointSet | undefined) => set?.endpoints.filter((e) => e.state === 'ready') ?? [];
    const fromA = await until(() => ready(sets.at(-1)).length === 2 && sets.at(-1), 20_000, 'replica A to run two instances');
    const admin = await httpGet(adminPort, '/v1/autoscaler');
    expect(JSON.parse(admin?.body ?? '{}')).toMatchObject({ leader: true, provider: 'local' });
    const aEndpoints = ready(fromA);
    const aPids = await Promise.all(aEndpoints.map((e) => instancePid(e.port)));

    const observability = createObservability('replica-b');
    const bNc = await connectNats({ servers: server.url, name: 'replica-b', logger, observability });
    const autoscaler = new Autoscaler({
      nc: bNc,
      logger,
      registry: observability.registry,
      readiness: observability.readiness,
      provider: localProvider({
        host: '127.0.0.1',
        stateDir,
        startTimeoutMs: 10_000,
        stopTimeoutMs: 2000,
        logger,
        tenantUids: { base: 2_000_000, count: 1_000_000 },
      }),
      holder: 'replica-b',
      leaseTtlMs,
      drainTimeoutMs: 5000,
      maxClockSkewMs: 2000,
    });
    replicaB = { autoscaler, nc: bNc };
    await autoscaler.start();
    await new Promise((resolve) => setTimeout(resolve, leaseTtlMs));
    expect(autoscaler.isLeader).toBe(false);

    const killedAt = Date.now();
    processA.kill('SIGKILL');
    await until(() => autoscaler.isLeader, 10_000, 'replica B to take over');
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(leaseTtlMs + 1500);

    const fromB = await until(
      () => {
        const last = sets.at(-1);
        return last !== undefined && last.generation > fromA.generation && last;
      },
      20_000,
      'replica B to publish its first set',
    );
    // B's first set already holds A's two instances, ready: adopted, not started anew.
    expect(
      ready(fromB)
        .map((e) => [e.id, e.port])
        .sort(),
    ).toEqual(aEndpoints.map((e) => [e.id, e.port]).sort());
    for (const endpoint of ready(fromB)) expect((await httpGet(endpoint.port, '/'))?.status).toBe(200);
    const bPids = await Promise.all(ready(fromB).map((e) => instancePid(e.port)));
    expect(bPids.sort()).toEqual([...aPids].sort());
    expect(sets.filter((s) => s.generation > fromA.generation).every((s) => ready(s).length >= 2)).toBe(true);

    // A graceful stop of the (now lone) autoscaler stops its instances, adopted ones included, and forgets them.
    await autoscaler.stop();
    replicaB = undefined;
    await bNc.close();
    for (const pid of bPids) expect(processRunning(pid!)).toBe(false);
    expect(readdirSync(stateDir)).toEqual([]);
  });
});
