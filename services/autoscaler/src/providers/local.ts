import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { freePort, type Logger, type RevisionRef } from '@switchyard/shared';
import { revisionKey, type RevisionPlan } from '../revision-plans.js';
import { providerSources, type InstanceProvider, type InstanceView, type RevisionHooks, type RevisionInstances } from '../provider.js';
import { InstanceRecords, processIdentity, recordedProcessAlive, type InstanceRecord } from './instance-records.js';
import { probe } from './probe.js';
import { pickScaleIn, type ScaleInCandidate } from './scale-in.js';
import { canSwitchUser, createSandbox, instanceEnv, sandboxAt, tenantIdentity, type Sandbox, type UidRange } from './sandbox.js';

/**
 * The `local` instance provider: runs a revision's `command` as processes on this machine.
 * Each instance gets `PORT` (a free port) and `HOST` (the address it is published with and
 * should listen on) and runs sandboxed (see sandbox.ts): an environment of its own, its own
 * directory and process group, and, when Switchyard runs as root, its tenant's own
 * unprivileged uid. A string command runs through `/bin/sh -c`, an array as argv.
 *
 * An instance is `starting` until the service's health check passes (HTTP GET of its path
 * with a 2xx answer, or a TCP connect), then `ready`. Instances that exit are replaced;
 * instances that fail to start (or crash within 10 s of becoming ready) are retried with
 * exponential backoff, each failure reported as an event. Stopping sends SIGTERM to the
 * instance's process group and SIGKILL after the stop timeout.
 *
 * Instances outlive the autoscaler: their output goes to files and each one is recorded in
 * the state directory (instance-records.ts). Opening a revision adopts its recorded instances
 * that still run and answer their health check, so a new leader (or the same autoscaler
 * restarted after a crash) publishes them from its first endpoint set; an adopted instance is
 * not our child, so its exit is noticed by polling /proc.
 */

export interface LocalProviderOptions {
  /** Address instances listen on and are published with. */
  host: string;
  /** Where this machine's instances are recorded (LOCAL_STATE_DIR). */
  stateDir: string;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** Longest wait between readiness probes of a starting instance (default 100 ms); see {@link probeWaitMs}. */
  probeIntervalMs?: number;
  /** How often an adopted instance (not our child) is checked for having exited. */
  exitPollMs?: number;
  /** Uids for tenants' instances when running as root (one per tenant). */
  tenantUids: UidRange;
}

interface LocalSettings extends LocalProviderOptions {
  uids: UidRange | undefined;
  records: InstanceRecords;
}

const crashLoopMs = 10_000;
/** Health checks an instance gets before it is adopted as `starting` rather than `ready` (one may fail on a busy machine). */
const adoptionProbes = 3;

export function localProvider(options: LocalProviderOptions): InstanceProvider {
  const uids = canSwitchUser() ? options.tenantUids : undefined;
  if (uids === undefined) options.logger.warn("not running as root: local instances run under the autoscaler's own uid");
  const settings: LocalSettings = { ...options, uids, records: new InstanceRecords(options.stateDir) };
  return {
    name: 'local',
    runs: providerSources.local,
    open: (plan, hooks) => LocalRevision.open(settings, plan, hooks),
    stopUnwanted: (wanted) => stopUnwanted(settings, wanted),
  };
}

/** What makes instances interchangeable: the same command and env, published on the same host. */
function launchSpecHash(plan: RevisionPlan, host: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ source: plan.source, host }))
    .digest('hex')
    .slice(0, 16);
}

type LocalState = 'starting' | 'ready' | 'draining' | 'stopping';

interface LocalInstance extends Omit<InstanceRecord, 'schemaVersion' | 'sandboxDir'> {
  /** Set when this process started it; an adopted instance is not our child. */
  child: ChildProcess | undefined;
  sandbox: Sandbox;
  state: LocalState;
  /** Marked for replacement (e.g. unhealthy). */
  replace: boolean;
  gone: boolean;
  exitPoll: NodeJS.Timeout | undefined;
  exited: Promise<void>;
  markExited: () => void;
}

/**
 * Run by a new leader: forgets recorded instances that are gone (their directories removed) and
 * stops those of revisions no longer wanted. The wanted revisions' instances are left to `open`.
 */
async function stopUnwanted(settings: LocalSettings, wanted: (ref: RevisionRef) => boolean): Promise<void> {
  const { records, logger } = settings;
  await Promise.all(
    records.list().map(async (record) => {
      if (recordedProcessAlive(record)) {
        if (wanted(record.ref)) return;
        logger.info({ ...record.ref, instance: record.id, pid: record.pid }, 'stopping an instance of a revision no longer wanted');
        await stopProcessGroup(record, settings.stopTimeoutMs, settings.exitPollMs ?? 500);
      }
      records.remove(record.ref, record.id);
      await sandboxAt(record.sandboxDir).remove();
    }),
  );
}

/** SIGTERM to a recorded instance's group, SIGKILL once `stopTimeoutMs` passed; resolves when it is gone. */
async function stopProcessGroup(
  record: Pick<InstanceRecord, 'pid' | 'pgid' | 'startTime'>,
  stopTimeoutMs: number,
  pollMs: number,
): Promise<void> {
  signalGroup(record.pgid, 'SIGTERM');
  const killAt = Date.now() + stopTimeoutMs;
  while (recordedProcessAlive(record)) {
    if (Date.now() >= killAt) signalGroup(record.pgid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  signalGroup(record.pgid, 'SIGKILL');
}

class LocalRevision implements RevisionInstances {
  private readonly members = new Map<string, LocalInstance>();
  /** Instances waiting for a port: counted as starting. */
  private launching = 0;
  private readonly launches = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };
  /** Unset until the first `scale`: adoption must not retire what it has not counted yet. */
  private target: number | undefined;
  private specHash: string;
  private failures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Handed over to the next leader: the instances run on, this object no longer acts on them. */
  private released = false;

  /** Opens a revision, adopting its recorded instances that still run first. */
  static async open(settings: LocalSettings, plan: RevisionPlan, hooks: RevisionHooks): Promise<LocalRevision> {
    const revision = new LocalRevision(settings, plan, hooks);
    await revision.adopt();
    return revision;
  }

  private constructor(
    private readonly options: LocalSettings,
    private plan: RevisionPlan,
    private readonly hooks: RevisionHooks,
  ) {
    this.log = options.logger.child({ ...plan.ref });
    this.backoff = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.specHash = launchSpecHash(plan, options.host);
  }

  scale(count: number): void {
    this.target = count;
    this.reconcile();
  }

  update(plan: RevisionPlan): void {
    const specHash = launchSpecHash(plan, this.options.host);
    this.plan = plan;
    if (specHash !== this.specHash) {
      this.specHash = specHash;
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
      views.push({ id: m.id, address: m.host, port: m.port, state: m.state, startedAt: m.startedAt });
    }
    return views;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all(this.launches);
    this.reconcile();
    await Promise.all([...this.members.values()].map((m) => m.exited));
  }

  release(): void {
    this.released = true;
    clearTimeout(this.retryTimer);
    for (const m of this.members.values()) clearInterval(m.exitPoll);
  }

  /**
   * Takes over this revision's recorded instances: gone ones are forgotten, running ones that
   * answer their health check become `ready` members, the others `starting` ones (given the
   * rest of their start timeout). Instances of another launch spec are replaced as usual.
   */
  private async adopt(): Promise<void> {
    let recorded: InstanceRecord[];
    try {
      recorded = this.options.records.list().filter((r) => revisionKey(r.ref) === revisionKey(this.plan.ref));
    } catch (err) {
      this.log.error({ err, stateDir: this.options.stateDir }, 'could not read the recorded instances; adopting none');
      return;
    }
    await Promise.all(recorded.map((record) => this.adoptOne(record)));
  }

  private async adoptOne(record: InstanceRecord): Promise<void> {
    if (!recordedProcessAlive(record)) {
      this.log.info({ instance: record.id, pid: record.pid }, 'a recorded instance is gone; forgetting it');
      this.options.records.remove(record.ref, record.id);
      await sandboxAt(record.sandboxDir).remove();
      return;
    }
    const { id, ref, pid, startTime, pgid, host, port, specHash, startedAt, readyAt, sandboxDir } = record;
    const fields = { id, ref, pid, startTime, pgid, host, port, specHash, startedAt, readyAt };
    const m = this.member({ ...fields, child: undefined, sandbox: sandboxAt(sandboxDir) });
    m.exitPoll = setInterval(() => {
      if (!recordedProcessAlive(m)) this.finish(m, 'exited (adopted: its exit status is unknown)');
    }, this.options.exitPollMs ?? 500);
    for (let attempt = 0; attempt < adoptionProbes && !m.gone; attempt++) {
      if (await probe(m.host, m.port, this.plan.healthCheck)) {
        this.markReady(m, `adopted: pid ${m.pid}, port ${m.port}, running since ${new Date(m.startedAt).toISOString()}`);
        return;
      }
    }
    this.log.warn({ instance: m.id, pid: m.pid }, 'adopted an instance that does not answer its health check yet');
    void this.awaitReady(m);
  }

  private member(fields: Omit<LocalInstance, 'state' | 'replace' | 'gone' | 'exitPoll' | 'exited' | 'markExited'>): LocalInstance {
    let markExited = () => {};
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const m: LocalInstance = { ...fields, state: 'starting', replace: false, gone: false, exitPoll: undefined, exited, markExited };
    this.members.set(m.id, m);
    return m;
  }

  private isCurrent(m: LocalInstance): boolean {
    return m.specHash === this.specHash && !m.replace;
  }

  /** Moves the instances towards `target` serving instances of the current spec. */
  private reconcile(): void {
    if (this.released || (this.target === undefined && !this.closed)) return;
    const target = this.closed ? 0 : (this.target ?? 0);
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
    const view: InstanceView = { id: m.id, address: m.host, port: m.port, state: 'draining', startedAt: m.startedAt };
    void this.hooks.drained(view).then(() => {
      if (m.state === 'draining' && !this.released) this.stop(m);
    });
  }

  private stop(m: LocalInstance): void {
    if (m.state === 'stopping' || m.gone) return;
    m.state = 'stopping';
    this.hooks.changed();
    // A recorded pid is signalled only while it is still our instance (same start time).
    const signal = (name: NodeJS.Signals) => recordedProcessAlive(m) && signalGroup(m.pgid, name);
    signal('SIGTERM');
    const kill = setTimeout(() => signal('SIGKILL'), this.options.stopTimeoutMs);
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
      if (this.closed || this.released) await sandbox.remove();
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

  /** Spawns and records the instance in one synchronous step: no autoscaler crash can fall between the two. */
  private spawnInstance(id: string, port: number, sandbox: Sandbox): void {
    const { source, ref } = this.plan;
    if (source.kind !== 'command') {
      void sandbox.remove();
      throw new Error(`the local provider cannot run a ${source.kind} revision`);
    }
    const argv = typeof source.command === 'string' ? ['/bin/sh', '-c', source.command] : source.command;
    const [file, ...args] = argv;
    const env = instanceEnv(process.env, source.env, { port, host: this.options.host, home: sandbox.dir });
    const { records } = this.options;
    const output = records.openOutput(ref, id);
    let child: ChildProcess;
    try {
      // detached: the instance leads its own process group, so stopping it reaches everything it started.
      child = spawn(file as string, args, {
        env,
        cwd: sandbox.dir,
        ...sandbox.identity,
        stdio: ['ignore', output.stdout, output.stderr],
        detached: true,
      });
    } catch (err) {
      records.remove(ref, id);
      void sandbox.remove();
      throw err;
    } finally {
      output.close();
    }
    const pid = child.pid ?? 0;
    const running = pid === 0 ? undefined : processIdentity(pid);
    const m = this.member({
      id,
      ref,
      pid,
      startTime: running?.startTime ?? '',
      pgid: pid,
      host: this.options.host,
      port,
      specHash: this.specHash,
      child,
      sandbox,
      startedAt: Date.now(),
    });
    if (running !== undefined) this.record(m);
    child.once('error', (err) => this.finish(m, `could not run: ${err.message}`));
    child.once('exit', (code, signal) => this.finish(m, signal !== null ? `killed by ${signal}` : `exited with code ${code}`));
    this.hooks.event(id, 'starting', `port ${port}, pid ${child.pid ?? 'none'}`);
    this.hooks.changed();
    void this.awaitReady(m);
  }

  private record(m: LocalInstance): void {
    const { id, ref, pid, startTime, pgid, host, port, specHash, startedAt, readyAt, sandbox } = m;
    this.options.records.write({
      schemaVersion: 1,
      id,
      ref,
      pid,
      startTime,
      pgid,
      host,
      port,
      specHash,
      sandboxDir: sandbox.dir,
      startedAt,
      readyAt,
    });
  }

  /** The instance is gone: whatever it left running in its group goes with it, then its directory and record. */
  private finish(m: LocalInstance, detail: string): void {
    if (m.gone || this.released) return;
    m.gone = true;
    clearInterval(m.exitPoll);
    this.members.delete(m.id);
    if (m.pgid > 0) signalGroup(m.pgid, 'SIGKILL');
    const stderr = this.options.records.stderrTail(m.ref, m.id);
    this.options.records.remove(m.ref, m.id);
    void m.sandbox.remove().finally(m.markExited);
    this.onExit(m, detail, stderr);
  }

  private markReady(m: LocalInstance, detail: string): void {
    m.state = 'ready';
    m.readyAt ??= Date.now();
    this.record(m);
    this.hooks.event(m.id, 'ready', detail);
    this.hooks.changed();
  }

  private async awaitReady(m: LocalInstance): Promise<void> {
    const interval = this.options.probeIntervalMs ?? 100;
    const deadline = m.startedAt + this.options.startTimeoutMs;
    while (m.state === 'starting' && !m.gone && !this.released) {
      if (await probe(m.host, m.port, this.plan.healthCheck)) {
        if (m.state !== 'starting' || m.gone || this.released) return;
        this.markReady(m, `ready after ${Date.now() - m.startedAt} ms`);
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

  private onExit(m: LocalInstance, how: string, stderr: string[]): void {
    const tail = stderr.length > 0 ? `; stderr: ${stderr.join('\n')}` : '';
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

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // The group is already gone.
    return false;
  }
}
