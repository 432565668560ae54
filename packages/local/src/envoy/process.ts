import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { dyingWithParent } from '@switchyard/shared';

/** envoy.admin.v3.ConfigDump as JSON; entries are read by their `@type` (e.g. `….ClustersConfigDump`). */
export interface EnvoyConfigDump {
  configs: ({ '@type': string } & Record<string, unknown>)[];
}

export interface EnvoyStartOptions {
  /** The Envoy binary (see findEnvoy). */
  binary: string;
  /** The bootstrap object (see localBootstrap). */
  bootstrap: Record<string, unknown>;
  /** This Envoy's files: bootstrap, log, admin address. */
  dataDir: string;
  /** Node id, unique per Envoy: the control plane tracks delivery and HDS assignments by it. */
  nodeId: string;
  /** Node cluster (`--service-cluster`). */
  cluster?: string;
  /** Envoy's log level (default warn); the log goes to `<dataDir>/envoy.log`. */
  logLevel?: string;
  /** How long to wait for the admin server to come up. */
  startTimeoutMs?: number;
}

/**
 * One Envoy process and its admin API. Several may run on one machine: hot restart is off
 * (no shared memory, no base id to choose) and each has its own admin port and files.
 */
export class EnvoyProcess {
  private exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly nodeId: string,
    readonly adminUrl: string,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(options: EnvoyStartOptions): Promise<EnvoyProcess> {
    await mkdir(options.dataDir, { recursive: true });
    const bootstrapFile = join(options.dataDir, 'bootstrap.yaml');
    const adminAddressFile = join(options.dataDir, 'admin-address');
    const logFile = join(options.dataDir, 'envoy.log');
    await writeFile(bootstrapFile, stringify(options.bootstrap));
    await writeFile(adminAddressFile, '');
    const command = dyingWithParent(options.binary, [
      ...['-c', bootstrapFile, '--service-node', options.nodeId, '--service-cluster', options.cluster ?? 'switchyard-edge'],
      ...['--concurrency', '1', '--disable-hot-restart', '--admin-address-path', adminAddressFile],
      ...['--log-level', options.logLevel ?? 'warn', '--log-path', logFile],
    ]);
    const child = spawn(command.file, command.args, { stdio: 'ignore' });
    const exitedEarly = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`envoy exited (${code}) at start; see ${logFile}`))),
    );
    exitedEarly.catch(() => undefined);
    const address = await Promise.race([waitForFile(adminAddressFile, options.startTimeoutMs ?? 20_000), exitedEarly]);
    return new EnvoyProcess(child, options.nodeId, `http://${address}`, logFile);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** GET on the admin API, as text. */
  async admin(path: string, init?: RequestInit): Promise<{ status: number; text: string }> {
    const res = await fetch(`${this.adminUrl}${path}`, init);
    return { status: res.status, text: await res.text() };
  }

  /** True once Envoy has its initial config and its listeners are serving (`/ready` answers LIVE). */
  async ready(): Promise<boolean> {
    return (await this.admin('/ready').catch(() => ({ status: 0, text: '' }))).status === 200;
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.ready())) {
      if (!this.running) throw new Error(`envoy exited; see ${this.logFile}:\n${await this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`envoy not ready after ${timeoutMs} ms; see ${this.logFile}:\n${await this.logTail()}`);
      await sleep(100);
    }
  }

  /** `/config_dump` (with EDS when `includeEds`), parsed: one entry per config type, each with its `@type`. */
  async configDump(includeEds = false): Promise<EnvoyConfigDump> {
    const { text } = await this.admin(`/config_dump${includeEds ? '?include_eds' : ''}`);
    return JSON.parse(text) as EnvoyConfigDump;
  }

  /** Counters and gauges from `/stats`, optionally filtered by a regex Envoy applies. */
  async stats(filter?: string): Promise<Map<string, number>> {
    const query = filter === undefined ? '' : `?filter=${encodeURIComponent(filter)}`;
    const { text } = await this.admin(`/stats${query}`);
    const stats = new Map<string, number>();
    for (const line of text.split('\n')) {
      const match = /^(.+): (\d+)$/.exec(line);
      if (match) stats.set(match[1]!, Number(match[2]));
    }
    return stats;
  }

  async stat(name: string): Promise<number | undefined> {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return (await this.stats(`^${escaped}$`)).get(name);
  }

  /** The last lines of Envoy's log (for failure messages). */
  async logTail(lines = 30): Promise<string> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }

  /** SIGTERM, then SIGKILL if Envoy has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (text !== '') return text;
    if (Date.now() > deadline) throw new Error(`envoy wrote no admin address to ${file} within ${timeoutMs} ms`);
    await sleep(50);
  }
}
