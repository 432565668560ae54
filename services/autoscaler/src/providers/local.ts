import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { freePort, type Logger } from '@switchyard/shared';
import type { RevisionPlan } from '../revision-plans.js';
import { providerSources, type InstanceProvider, type InstanceView, type RevisionHooks, type RevisionInstances } from '../provider.js';
import { probe } from './probe.js';
import { pickScaleIn, type ScaleInCandidate } from './scale-in.js';
import { canSwitchUser, createSandbox, instanceEnv, tenantIdentity, type Sandbox, type UidRange } from './sandbox.js';

/**
 * The `local` instance provider: runs a revision's `command` as child processes on this
 * machine. Each instance gets `PORT` (a free port) and `HOST` (the address it is published
 * with and should listen on) and runs sandboxed (see sandbox.ts): an environment of its own,
 * its own directory and process group, and, when Switchyard runs as root, its tenant's own
 * unprivileged uid. A string command runs through `/bin/sh -c`, an array as argv.
 *
 * An instance is `starting` until the service's health check passes (HTTP GET of its path
 * with a 2xx answer, or a TCP connect), then `ready`. Instances that exit are replaced;
 * instances that fail to start (or crash within 10 s of becoming ready) are retried with
 * exponential backoff, each failure reported as an event. Stopping sends SIGTERM to the
 * instance's process group and SIGKILL after the stop timeout. Where util-linux `setpriv`
 * is available, instances also get SIGTERM when the autoscaler process dies, so a crashed
 * autoscaler leaves no orphans behind.
 */

export interface LocalProviderOptions {
  /** Address instances listen on and are published with. */
  host: string;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Longest wait between readiness probes of a starting instance (default 100 ms); see {@link probeWaitMs}. */
  probeIntervalMs?: number;
  /** Uids for tenants' instances when running as root (one per tenant). */
  tenantUids: UidRange;
}

const crashLoopMs = 10_000;

export function localProvider(options: LocalProviderOptions): InstanceProvider {
  const parentDeath = supportsParentDeathSignal();
  const uids = canSwitchUser() ? options.tenantUids : undefined;
  if (uids === undefined) options.logger.warn("not running as root: local instances run under the autoscaler's own uid");
  return {
    name: 'local',
    runs: providerSources.local,
    open: (plan, hooks) => new LocalRevision({ ...options, parentDeath, uids }, plan, hooks),
  };
}

function supportsParentDeathSignal(): boolean {
  const result = spawnSync('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore' });
  return result.status === 0;
}

type LocalState = 'starting' | 'ready' | 'draining' | 'stopping';

interface LocalInstance {
  id: string;
  port: number;
  child: ChildProcess;
  sandbox: Sandbox;
  state: LocalState;
  /** The launch spec version it runs; older ones are replaced. */
  version: number;
  /** Marked for replacement (e.g. unhealthy). */
  replace: boolean;
  startedAt: number;
  readyAt: number | undefined;
  stderrTail: string[];
  gone: boolean;
  exited: Promise<void>;
}

class LocalRevision implements RevisionInstances {
  private readonly members = new Map<string, LocalInstance>();
  /** Instances waiting for a port: counted as starting. */
  private launching = 0;
  private readonly launches = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };
  private target = 0;
  private version = 0;
  private failures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: LocalProviderOptions & { parentDeath: boolean; uids: UidRange | undefined },
    private plan: RevisionPlan,
    private readonly hooks: RevisionHooks,
  ) {
    this.log = options.logger.child({ ...plan.ref });
    this.backoff = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
  }

  scale(count: number): void {
    this.target = count;
    this.reconcile();
  }

  update(plan: RevisionPlan): void {
    const relaunch = JSON.stringify(plan.source) !== JSON.stringify(this.plan.source);
    this.plan = plan;
    if (relaunch) {
      this.version++;
      this.failures = 0;
      this.retryAt = 0;
      this.reconcile();
    }
  }

  replace(instanceId: string): void {
    const member = this.members.get(instanceId);
    if (member === undefined || member.replace || (member.state !== 'starting' && member.state !== 'ready')) return;
    member.replace = true;
    this.hooks.event(member.id, 'replaced', 'a new instance starts; this one drains once it is ready');
    this.reconcile();
  }

  instances(): InstanceView[] {
    const views: InstanceView[] = [];
    for (const m of this.members.values()) {
      if (m.state === 'stopping') continue;
      views.push({ id: m.id, address: this.options.host, port: m.port, state: m.state, startedAt: m.startedAt });
    }
    return views;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.target = 0;
    clearTimeout(this.retryTimer);
    await Promise.all(this.launches);
    this.reconcile();
    await Promise.all([...this.members.values()].map((m) => m.exited));
  }

  private isCurrent(m: LocalInstance): boolean {
    return m.version === this.version && !m.replace;
  }

  /** Moves the instances towards `target` serving instances of the current spec. */
  private reconcile(): void {
    const target = this.closed ? 0 : this.target;
    const members = [...this.members.values()];
    const serving = members.filter((m) => m.state === 'starting' || m.state === 'ready');
    const current = serving.filter((m) => this.isCurrent(m));
    let count = current.length + this.launching;

    for (const m of members) {
      if (count >= target) break;
      if (m.state === 'draining' && this.isCurrent(m)) {
        m.state = 'ready';
        count++;
        this.hooks.event(m.id, 'ready', 'back in service before its drain finished');
        this.hooks.changed();
      }
    }

    if (count < target) {
      const wait = this.retryAt - Date.now();
      if (wait <= 0) {
        for (; count < target; count++) this.start();
      } else if (this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.reconcile();
        }, wait);
      }
    }

    if (count > target) {
      // Starting instances serve nobody yet: retire them first, then the newest ready ones.
      for (const m of pickScaleIn(current as (LocalInstance & ScaleInCandidate)[], count - target)) this.retire(m);
    }

    // Old-spec and replaced instances keep serving only until enough current ones are ready.
    const readyCurrent = current.filter((m) => m.state === 'ready').length;
    const stillNeeded = Math.max(0, target - readyCurrent);
    const outdated = serving
      .filter((m) => !this.isCurrent(m))
      .sort((a, b) => (a.state === b.state ? a.startedAt - b.startedAt : a.state === 'ready' ? -1 : 1));
    outdated.forEach((m, i) => {
      if (m.state === 'starting' || i >= stillNeeded) this.retire(m);
    });
  }

  private retire(m: LocalInstance): void {
    if (m.state === 'starting') {
      this.stop(m);
      return;
    }
    if (m.state !== 'ready') return;
    m.state = 'draining';
    this.hooks.event(m.id, 'draining', '');
    this.hooks.changed();
    const view: InstanceView = { id: m.id, address: this.options.host, port: m.port, state: 'draining', startedAt: m.startedAt };
    void this.hooks.drained(view).then(() => {
      if (m.state === 'draining') this.stop(m);
    });
  }

  private stop(m: LocalInstance): void {
    if (m.state === 'stopping' || m.gone) return;
    m.state = 'stopping';
    this.hooks.changed();
    signalGroup(m.child, 'SIGTERM');
    const kill = setTimeout(() => signalGroup(m.child, 'SIGKILL'), this.options.stopTimeoutMs);
    void m.exited.then(() => clearTimeout(kill));
  }

  private start(): void {
    const id = `${this.plan.ref.revision}-${randomBytes(4).toString('hex')}`;
    this.launching++;
    const launch = (async () => {
      let port: number;
      let sandbox: Sandbox;
      try {
        port = await freePort(this.options.host);
        const { uids } = this.options;
        sandbox = await createSandbox(uids === undefined ? undefined : tenantIdentity(this.plan.ref.tenant, uids));
      } finally {
        this.launching--;
      }
      // The instance is counted as launching until it is a member: never both, never neither.
      if (this.closed) await sandbox.remove();
      else this.spawnInstance(id, port, sandbox);
    })()
      .catch((err: unknown) => {
        this.hooks.event(id, 'start_failed', `could not launch: ${err instanceof Error ? err.message : String(err)}`);
        this.failed();
      })
      .finally(() => {
        this.launches.delete(launch);
        this.reconcile();
      });
    this.launches.add(launch);
  }

  private spawnInstance(id: string, port: number, sandbox: Sandbox): void {
    const { source } = this.plan;
    if (source.kind !== 'command') {
      void sandbox.remove();
      throw new Error(`the local provider cannot run a ${source.kind} revision`);
    }
    const argv = typeof source.command === 'string' ? ['/bin/sh', '-c', source.command] : source.command;
    const [file, ...args] = this.options.parentDeath ? ['setpriv', '--pdeathsig', 'SIGTERM', '--', ...argv] : argv;
    const env = instanceEnv(process.env, source.env, { port, host: this.options.host, home: sandbox.dir });
    // detached: the instance leads its own process group, so stopping it reaches everything it started.
    const child = spawn(file as string, args, {
      env,
      cwd: sandbox.dir,
      ...sandbox.identity,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let markExited = () => {};
    const member: LocalInstance = {
      id,
      port,
      child,
      sandbox,
      state: 'starting',
      version: this.version,
      replace: false,
      startedAt: Date.now(),
      readyAt: undefined,
      stderrTail: [],
      gone: false,
      exited: new Promise<void>((resolve) => (markExited = resolve)),
    };
    this.members.set(id, member);
    const log = this.log.child({ instance: id });
    for (const [stream, readable] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const) {
      if (readable === null) continue;
      createInterface({ input: readable, crlfDelay: Infinity }).on('line', (line: string) => {
        const text = line.length > 4096 ? `${line.slice(0, 4096)}…` : line;
        if (stream === 'stderr') member.stderrTail = [...member.stderrTail.slice(-9), text];
        log.info({ stream }, text);
      });
    }
    const finish = (detail: string) => {
      if (member.gone) return;
      member.gone = true;
      this.members.delete(id);
      // Whatever the instance left running in its group goes with it, then its directory.
      signalGroup(child, 'SIGKILL');
      void sandbox.remove().finally(markExited);
      this.onExit(member, detail);
    };
    child.once('error', (err) => finish(`could not run: ${err.message}`));
    child.once('exit', (code, signal) => finish(signal !== null ? `killed by ${signal}` : `exited with code ${code}`));
    this.hooks.event(id, 'starting', `port ${port}, pid ${child.pid ?? 'none'}`);
    this.hooks.changed();
    void this.awaitReady(member);
  }

  private async awaitReady(m: LocalInstance): Promise<void> {
    const interval = this.options.probeIntervalMs ?? 100;
    const deadline = m.startedAt + this.options.startTimeoutMs;
    while (m.state === 'starting' && !m.gone) {
      if (await probe(this.options.host, m.port, this.plan.healthCheck)) {
        if (m.state !== 'starting' || m.gone) return;
        m.state = 'ready';
        m.readyAt = Date.now();
        this.hooks.event(m.id, 'ready', `ready after ${m.readyAt - m.startedAt} ms`);
        this.hooks.changed();
        // Only an instance that stays up for a while proves the command works again.
        setTimeout(() => {
          if (!m.gone) this.failures = 0;
        }, crashLoopMs).unref();
        this.reconcile();
        return;
      }
      if (Date.now() >= deadline) {
        this.hooks.event(m.id, 'start_failed', `not ready within ${this.options.startTimeoutMs} ms`);
        this.failed();
        this.stop(m);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, probeWaitMs(Date.now() - m.startedAt, interval)));
    }
  }

  private onExit(m: LocalInstance, how: string): void {
    const tail = m.stderrTail.length > 0 ? `; stderr: ${m.stderrTail.join('\n')}` : '';
    if (m.state === 'stopping') {
      this.hooks.event(m.id, 'stopped', how);
    } else {
      if (m.state === 'starting') {
        this.hooks.event(m.id, 'start_failed', `${how} before becoming ready${tail}`);
        this.failed();
      } else {
        this.hooks.event(m.id, 'exited', `${how}${tail}`);
        if (m.readyAt !== undefined && Date.now() - m.readyAt < crashLoopMs) this.failed();
      }
      this.hooks.changed();
    }
    this.reconcile();
  }

  /** Counts a failed start and pushes the next attempt out: 1 s, 2 s, 4 s … up to the maximum. */
  private failed(): void {
    this.failures++;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.failures - 1));
    this.retryAt = Date.now() + delay;
    this.log.warn({ failures: this.failures, retryInMs: delay }, 'instance failed to start; backing off');
  }
}

/**
 * The wait before the next readiness probe of an instance starting for `elapsedMs`: a twentieth
 * of that, at least 2 ms and at most the probe interval. A request held for a cold start waits
 * for readiness to be noticed, so the wait stays small next to the start itself (a 100 ms start
 * is noticed within about 5 ms, not up to a whole interval later); probing a port nobody
 * listens on yet costs one refused connect.
 */
export function probeWaitMs(elapsedMs: number, intervalMs: number): number {
  return Math.min(intervalMs, Math.max(2, elapsedMs / 20));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}
