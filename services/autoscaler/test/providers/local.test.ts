import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { RevisionPlan } from '../../src/revision-plans.js';
import type { InstanceEventKind, InstanceView, RevisionHooks, RevisionInstances } from '../../src/provider.js';
import { localProvider, type LocalProviderOptions } from '../../src/providers/local.js';
import { capturingLogger, defaultScaling, httpGet, instancePid, instanceServer, processRunning, tenantProbe, until } from '../helpers.js';

/** Records what a provider reports; drains finish when the test says so (at once by default). */
const recorders: { stopHolding: () => void }[] = [];

function recorder() {
  const events: { instance: string; event: InstanceEventKind; detail: string; at: number }[] = [];
  const drainRequests: InstanceView[] = [];
  let holdDrains = false;
  const held: (() => void)[] = [];
  let changes = 0;
  const hooks: RevisionHooks = {
    changed: () => changes++,
    event: (instance, event, detail) => events.push({ instance, event, detail, at: Date.now() }),
    drained: (instance) => {
      drainRequests.push(instance);
      return holdDrains ? new Promise<void>((resolve) => held.push(resolve)) : Promise.resolve();
    },
  };
  const rec = {
    hooks,
    events,
    drainRequests,
    changes: () => changes,
    of: (event: InstanceEventKind) => events.filter((e) => e.event === event),
    holdDrains: () => (holdDrains = true),
    releaseDrains: () => held.splice(0).forEach((release) => release()),
    stopHolding: () => {
      holdDrains = false;
      held.splice(0).forEach((release) => release());
    },
  };
  recorders.push(rec);
  return rec;
}

function plan(
  command: string | string[],
  env: Record<string, string> = {},
  healthCheck: Partial<RevisionPlan['healthCheck']> = {},
): RevisionPlan {
  return {
    ref: { tenant: 'acme', service: 'web', revision: 'blue' },
    source: { kind: 'command', command, env },
    scaling: defaultScaling,
    healthCheck: {
      protocol: 'http',
      path: '/healthz',
      interval: 1000,
      timeout: 500,
      healthyThreshold: 1,
      unhealthyThreshold: 3,
      gracePeriod: 1000,
      ...healthCheck,
    },
    trafficPercent: 100,
    deploying: false,
  };
}

const node = process.execPath;
const open: RevisionInstances[] = [];

interface StartOptions {
  stopTimeoutMs?: number;
  startTimeoutMs?: number;
  /** Shared by providers that should adopt each other's instances; a fresh one by default. */
  stateDir?: string;
}

function providerOptions(stateDir: string, options: StartOptions = {}): LocalProviderOptions {
  return {
    host: '127.0.0.1',
    stateDir,
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 5000,
    logger: capturingLogger().logger,
    tenantUids: { base: 2_100_000, count: 1_000_000 },
    backoff: { initialMs: 200, maxMs: 1600 },
    probeIntervalMs: 50,
    exitPollMs: 100,
  };
}

async function start(p: RevisionPlan, hooks: RevisionHooks, options: StartOptions = {}) {
  const stateDir = options.stateDir ?? (await freshStateDir());
  const revision = await localProvider(providerOptions(stateDir, options)).open(p, hooks);
  open.push(revision);
  return { revision, stateDir };
}

const stateDirs: string[] = [];

async function freshStateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-local-state-'));
  stateDirs.push(dir);
  return join(dir, 'instances');
}

const ready = (revision: RevisionInstances) => revision.instances().filter((i) => i.state === 'ready');

afterEach(async () => {
  recorders.splice(0).forEach((rec) => rec.stopHolding());
  await Promise.all(open.splice(0).map((r) => r.close()));
  await Promise.all(stateDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('local provider', () => {
  it('runs instances with PORT, the revision env and nothing else from the autoscaler, and logs their output', async () => {
    process.env.LEAK_CHECK = 'must-not-reach-instances';
    const rec = recorder();
    const { revision, stateDir } = await start(plan([node, instanceServer], { GREETING: 'hello' }), rec.hooks);
    revision.scale(2);
    await until(() => ready(revision).length === 2, 15_000, 'two ready instances');
    const instances = ready(revision);
    expect(new Set(instances.map((i) => i.port)).size).toBe(2);
    for (const instance of instances) {
      const answer = await httpGet(instance.port, '/env');
      expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ port: instance.port, greeting: 'hello', leaked: null });
    }
    expect(rec.of('starting')).toHaveLength(2);
    expect(rec.of('ready')).toHaveLength(2);
    for (const instance of instances) {
      const output = join(stateDir, `acme.web.${instance.id}`, 'stdout.log');
      await until(
        () => existsSync(output) && readFileSync(output, 'utf8').includes(`listening on`),
        15_000,
        'the instance output in its file',
      );
      expect(statSync(output).mode & 0o777).toBe(0o600);
    }
    delete process.env.LEAK_CHECK;
  });

  it('runs a string command through the shell', async () => {
    const rec = recorder();
    const { revision } = await start(plan(`GREETING=from-shell exec "${node}" "${instanceServer}"`, {}, { protocol: 'tcp' }), rec.hooks);
    revision.scale(1);
    const [instance] = await until(() => ready(revision).length === 1 && ready(revision));
    const answer = await httpGet(instance!.port, '/env');
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ greeting: 'from-shell' });
  });

  it('waits for the health check before an instance is ready', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer], { READY_AFTER_MS: '600' }), rec.hooks);
    revision.scale(1);
    await until(() => ready(revision).length === 1);
    const startedAt = rec.of('starting')[0]!.at;
    expect(rec.of('ready')[0]!.at - startedAt).toBeGreaterThanOrEqual(500);
  });

  it('restarts an instance that crashes', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks);
    revision.scale(1);
    const [first] = await until(() => ready(revision).length === 1 && ready(revision));
    await httpGet(first!.port, '/crash');
    const [second] = await until(() => ready(revision).length === 1 && ready(revision)[0]!.id !== first!.id && ready(revision));
    expect(second!.id).not.toBe(first!.id);
    expect(rec.of('exited')[0]).toMatchObject({ instance: first!.id, detail: expect.stringContaining('exited with code 1') });
  });

  it('drains before stopping on scale-down: SIGTERM, newest first', async () => {
    const rec = recorder();
    rec.holdDrains();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks);
    revision.scale(2);
    await until(() => ready(revision).length === 2);
    const [older, newer] = [...ready(revision)].sort((a, b) => a.startedAt - b.startedAt);
    revision.scale(1);
    expect(rec.drainRequests.map((i) => i.id)).toEqual([newer!.id]);
    expect(revision.instances().find((i) => i.id === newer!.id)?.state).toBe('draining');
    // Still running while draining: in-flight requests can finish.
    expect((await httpGet(newer!.port, '/'))?.status).toBe(200);
    rec.releaseDrains();
    await until(() => rec.of('stopped').length === 1);
    // Exit code 0, not "killed by SIGTERM": the instance got SIGTERM and closed by itself.
    expect(rec.of('stopped')[0]).toMatchObject({ instance: newer!.id, detail: 'exited with code 0' });
    expect(revision.instances().map((i) => i.id)).toEqual([older!.id]);
  });

  it('puts a draining instance back into service instead of starting a new one', async () => {
    const rec = recorder();
    rec.holdDrains();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks);
    revision.scale(2);
    await until(() => ready(revision).length === 2);
    revision.scale(1);
    revision.scale(2);
    expect(ready(revision)).toHaveLength(2);
    expect(rec.of('starting')).toHaveLength(2);
    rec.releaseDrains();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ready(revision)).toHaveLength(2);
    expect(rec.of('stopped')).toHaveLength(0);
  });

  it('kills an instance that ignores SIGTERM after the stop timeout', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer], { IGNORE_SIGTERM: '1' }), rec.hooks, { stopTimeoutMs: 300 });
    revision.scale(1);
    await until(() => ready(revision).length === 1);
    revision.scale(0);
    await until(() => rec.of('stopped').length === 1);
    expect(rec.of('stopped')[0]?.detail).toBe('killed by SIGKILL');
  });

  it('retries a command that fails to start with growing backoff, without holding up another revision', async () => {
    const failing = recorder();
    const { revision: broken } = await start(plan([node, instanceServer], { FAIL_START: '1' }), failing.hooks);
    broken.scale(1);
    const healthy = recorder();
    const { revision: fine } = await start(plan([node, instanceServer]), healthy.hooks);
    fine.scale(1);
    await until(() => ready(fine).length === 1, 15_000, 'the healthy revision');
    await until(() => failing.of('start_failed').length >= 4, 15_000, 'four failed starts');
    const failures = failing.of('start_failed');
    expect(failures[0]?.detail).toContain('refusing to start');
    const gaps = failures.slice(1).map((f, i) => f.at - failures[i]!.at);
    // 200 ms, 400 ms, 800 ms between attempts (plus the start itself).
    expect(gaps[0]).toBeGreaterThanOrEqual(180);
    expect(gaps[2]).toBeGreaterThanOrEqual(780);
    expect(gaps[2]!).toBeGreaterThan(gaps[0]!);
    expect(ready(broken)).toHaveLength(0);
  });

  it('reports a command that cannot be executed', async () => {
    const rec = recorder();
    const { revision } = await start(plan(['/nonexistent/binary']), rec.hooks);
    revision.scale(1);
    await until(() => rec.of('start_failed').length >= 1);
    expect(revision.instances().filter((i) => i.state === 'ready')).toHaveLength(0);
  });

  it('gives up on an instance that does not become healthy in time', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer], { READY_AFTER_MS: '60000' }), rec.hooks, { startTimeoutMs: 400 });
    revision.scale(1);
    const failure = await until(() => rec.of('start_failed')[0]);
    expect(failure.detail).toBe('not ready within 400 ms');
  });

  it('replaces instances one by one when the launch settings change', async () => {
    const rec = recorder();
    const first = plan([node, instanceServer], { GREETING: 'v1' });
    const { revision } = await start(first, rec.hooks);
    revision.scale(2);
    await until(() => ready(revision).length === 2);
    const old = ready(revision).map((i) => i.id);
    revision.update({ ...first, source: { kind: 'command', command: [node, instanceServer], env: { GREETING: 'v2' } } });
    await until(() => ready(revision).length === 2 && ready(revision).every((i) => !old.includes(i.id)), 15_000, 'new instances');
    for (const instance of ready(revision)) {
      expect(JSON.parse((await httpGet(instance.port, '/env'))?.body ?? '{}').greeting).toBe('v2');
    }
    expect(rec.drainRequests.map((i) => i.id).sort()).toEqual([...old].sort());
  });

  it('replaces an instance on request: the new one first, then the old one drains', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks);
    revision.scale(1);
    const [sick] = await until(() => ready(revision).length === 1 && ready(revision));
    revision.replace(sick!.id);
    expect(rec.of('replaced')[0]?.instance).toBe(sick!.id);
    expect(revision.instances().find((i) => i.id === sick!.id)?.state).toBe('ready');
    await until(() => rec.of('stopped').some((e) => e.instance === sick!.id));
    expect(ready(revision)).toHaveLength(1);
    expect(ready(revision)[0]?.id).not.toBe(sick!.id);
  });

  it('stops everything on close', async () => {
    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks);
    revision.scale(3);
    await until(() => ready(revision).length === 3);
    const pids = await Promise.all(ready(revision).map((i) => instancePid(i.port)));
    await revision.close();
    expect(revision.instances()).toHaveLength(0);
    for (const pid of pids) expect(processRunning(pid!)).toBe(false);
  });
});

const providerHost = fileURLToPath(new URL('../fixtures/provider-host.mjs', import.meta.url));

/** Runs the provider in a process of its own (an autoscaler), `count` instances ready, then SIGKILLs it. */
async function crashedAutoscaler(stateDir: string, count: number): Promise<InstanceView[]> {
  const host = spawn(node, [providerHost, stateDir, String(count), instanceServer], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: host.stdout }).once('line', resolve);
    host.once('exit', (code) => reject(new Error(`the provider host exited with ${code}`)));
  });
  const exited = new Promise((resolve) => host.once('exit', resolve));
  host.kill('SIGKILL');
  await exited;
  return JSON.parse(line) as InstanceView[];
}

function recordFile(stateDir: string, id: string): string {
  return join(stateDir, `acme.web.${id}`, 'instance.json');
}

describe('local instances outliving the autoscaler', () => {
  it('adopts the instances of a killed autoscaler as ready members by the time open resolves, and stops them on close', async () => {
    const stateDir = await freshStateDir();
    const left = await crashedAutoscaler(stateDir, 2);
    const pids = await Promise.all(left.map((i) => instancePid(i.port)));
    // The autoscaler is gone; its instances still serve.
    for (const instance of left) expect((await httpGet(instance.port, '/'))?.status).toBe(200);
    const record = JSON.parse(readFileSync(recordFile(stateDir, left[0]!.id), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ id: left[0]!.id, pid: pids[0], pgid: pids[0], port: left[0]!.port, host: '127.0.0.1' });
    expect(statSync(recordFile(stateDir, left[0]!.id)).mode & 0o777).toBe(0o600);

    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks, { stateDir });
    // Open resolved: both are members already, ready, with their ids and ports (no scale() yet).
    expect(
      ready(revision)
        .map((i) => [i.id, i.port])
        .sort(),
    ).toEqual(left.map((i) => [i.id, i.port]).sort());
    expect(rec.of('ready').map((e) => e.detail)).toEqual([expect.stringContaining('adopted'), expect.stringContaining('adopted')]);
    revision.scale(2);
    expect(rec.of('starting')).toHaveLength(0);

    // An adopted instance is not our child: its exit is noticed by polling, and it is replaced.
    await httpGet(left[0]!.port, '/crash');
    await until(() => rec.of('exited').some((e) => e.instance === left[0]!.id), 15_000, 'the adopted instance exit');
    await until(() => ready(revision).length === 2 && !ready(revision).some((i) => i.id === left[0]!.id), 15_000, 'a replacement');
    expect(existsSync(recordFile(stateDir, left[0]!.id))).toBe(false);

    await revision.close();
    expect(processRunning(pids[1]!)).toBe(false);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('forgets dead instances and never adopts a pid now used by another process', async () => {
    const stateDir = await freshStateDir();
    const [dead, reused] = await crashedAutoscaler(stateDir, 2);
    const deadPid = (await instancePid(dead!.port))!;
    const deadRecord = JSON.parse(readFileSync(recordFile(stateDir, dead!.id), 'utf8')) as { sandboxDir: string };
    process.kill(deadPid, 'SIGKILL');
    await until(() => !processRunning(deadPid), 10_000, 'the instance to die');
    // The other record now names a process that is not the one it recorded (as after pid reuse): same pid, another start time.
    const reusedPid = (await instancePid(reused!.port))!;
    const file = recordFile(stateDir, reused!.id);
    const forged = { ...(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>), startTime: '1' };
    writeFileSync(file, JSON.stringify(forged));

    const rec = recorder();
    const { revision } = await start(plan([node, instanceServer]), rec.hooks, { stateDir });
    expect(revision.instances()).toEqual([]);
    expect(existsSync(recordFile(stateDir, dead!.id))).toBe(false);
    expect(existsSync(deadRecord.sandboxDir)).toBe(false);
    expect(existsSync(file)).toBe(false);
    // Not ours any more: left alone, not signalled.
    expect(processRunning(reusedPid)).toBe(true);
    process.kill(-reusedPid, 'SIGKILL');
  });

  it('a new leader stops recorded instances of revisions it no longer runs', async () => {
    const stateDir = await freshStateDir();
    const left = await crashedAutoscaler(stateDir, 1);
    const pid = (await instancePid(left[0]!.port))!;
    await localProvider(providerOptions(stateDir)).stopUnwanted!((ref) => ref.revision !== 'blue');
    expect(processRunning(pid)).toBe(false);
    expect(readdirSync(stateDir)).toEqual([]);
  });
});

interface ProbeIdentity {
  pid: number;
  pgid: number;
  uid: number;
  gid: number;
  groups: number[];
  cwd: string;
  cwdOwner: number;
  cwdMode: number;
  env: Record<string, string>;
}

async function probeJson<T>(port: number, path: string): Promise<T> {
  const answer = await httpGet(port, path);
  if (answer === undefined) throw new Error(`no answer from the instance on port ${port}`);
  return JSON.parse(answer.body) as T;
}

async function runProbe(tenant: string): Promise<{ revision: RevisionInstances; port: number; identity: ProbeIdentity }> {
  const rec = recorder();
  const { revision } = await start(
    { ...plan([node, tenantProbe], { GREETING: 'hello' }), ref: { tenant, service: 'web', revision: 'blue' } },
    rec.hooks,
  );
  revision.scale(1);
  const [instance] = await until(() => ready(revision).length === 1 && ready(revision), 15_000, `${tenant}'s instance`);
  return { revision, port: instance.port, identity: await probeJson<ProbeIdentity>(instance.port, '/identity') };
}

const runningAsRoot = process.getuid?.() === 0;

describe('local instance sandbox', () => {
  it('gives an instance only PORT, HOST, PATH, LANG, the revision env and its own directory and process group', async () => {
    process.env.SWITCHYARD_ADMIN_TOKEN_CHECK = 'must-not-reach-instances';
    const { revision, identity } = await runProbe('acme');
    expect(Object.keys(identity.env).sort()).toEqual(
      ['GREETING', 'HOME', 'HOST', 'PATH', 'PORT', 'TMPDIR', ...(process.env.LANG === undefined ? [] : ['LANG'])].sort(),
    );
    expect(identity.env.HOME).toBe(identity.cwd);
    expect(identity.env.TMPDIR).toBe(identity.cwd);
    expect(identity.cwd).not.toBe(process.cwd());
    expect(identity.cwdMode).toBe(0o700);
    expect(identity.pgid).toBe(identity.pid);
    await revision.close();
    expect(existsSync(identity.cwd)).toBe(false);
  });

  it.runIf(runningAsRoot)(
    'runs each tenant as its own unprivileged uid that cannot reach Switchyard, its data or the other tenant',
    async () => {
      const data = await mkdtemp(join(tmpdir(), 'switchyard-data-'));
      await chmod(data, 0o700);
      const token = join(data, 'admin-token');
      await writeFile(token, 'secret\n', { mode: 0o600 });
      try {
        const acme = await runProbe('acme');
        const globex = await runProbe('globex');
        for (const { identity } of [acme, globex]) {
          expect(identity.uid).toBeGreaterThanOrEqual(2_100_000);
          expect(identity.gid).toBe(identity.uid);
          expect(identity.groups).toEqual([identity.gid]);
          expect(identity.cwdOwner).toBe(identity.uid);
        }
        expect(acme.identity.uid).not.toBe(globex.identity.uid);
        const query = new URLSearchParams({ data, token, pid: String(globex.identity.pid) });
        const attempts = await probeJson<Record<string, string>>(acme.port, `/attempts?${query}`);
        expect(attempts).toEqual({
          readParentEnviron: 'EACCES',
          signalParent: 'EPERM',
          listDataDir: 'EACCES',
          readTokenFile: 'EACCES',
          writeDataDir: 'EACCES',
          readOtherInstanceEnviron: 'EACCES',
          signalOtherInstance: 'EPERM',
          writeOwnDir: 'allowed',
        });
      } finally {
        await rm(data, { recursive: true, force: true });
      }
    },
  );
});
