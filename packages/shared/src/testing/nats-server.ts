import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { dyingWithParent } from '../child-process.js';
import { literalPasswords, natsServerAuthorization, type BusIdentity, type BusPasswords } from '../bus-permissions.js';
import type { NatsCredentials } from '../nats.js';

export interface NatsServerOptions {
  /** Keep JetStream data in this directory instead of a fresh temp dir. */
  storeDir?: string;
  /** Listen on this port instead of one the OS picks. */
  port?: number;
  binary?: string;
  /**
   * Run in its own process group, so a terminal's Ctrl-C reaches only the parent, which then
   * stops the server last (after its clients have drained).
   */
  detached?: boolean;
  /** Join a cluster (JetStream clustered: the node needs a unique name and routes to its peers). */
  cluster?: ClusterMembership;
  /**
   * Enforce the permission table: one user per bus identity with these passwords (see
   * bus-permissions.ts); anonymous clients are refused. The config is written into the store
   * directory, readable by this user only.
   */
  passwords?: BusPasswords;
}

/** One node's place in a cluster: `-n`, `--cluster_name`, `--cluster`, `--routes`. */
export interface ClusterMembership {
  serverName: string;
  clusterName: string;
  /** The port this node listens on for routes from its peers. */
  routePort: number;
  /** The peers' route URLs (`nats://127.0.0.1:<port>`). */
  routes: string[];
}

/**
 * A real nats-server with JetStream in a temp dir, on a port the OS picks. Tests own their
 * server: they can stop it (SIGTERM), kill it (SIGKILL) and restart it on the same port and
 * store, which is how clients' reconnect and durability are exercised.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly binary: string,
    public port: number,
    private readonly detached: boolean,
    private readonly cluster: ClusterMembership | undefined,
    readonly passwords: BusPasswords | undefined,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-nats-')));
    const server = new NatsServer(
      storeDir,
      options.storeDir === undefined,
      options.binary ?? 'nats-server',
      options.port ?? -1,
      options.detached ?? false,
      options.cluster,
      options.passwords,
    );
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The user and password of an identity (for a server started with `passwords`). */
  credentials(identity: BusIdentity): NatsCredentials {
    if (this.passwords === undefined) throw new Error('this nats-server was started without passwords');
    return { user: identity, password: this.passwords[identity] };
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async launch(): Promise<void> {
    const portsDir = join(this.storeDir, 'ports');
    await mkdir(portsDir, { recursive: true });
    const args = [
      ...(await this.authorizationArgs()),
      ...['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', join(this.storeDir, 'js'), '--ports_file_dir', portsDir],
      ...clusterArgs(this.cluster),
    ];
    const command = dyingWithParent(this.binary, args);
    const child = spawn(command.file, command.args, { stdio: ['ignore', 'ignore', 'pipe'], detached: this.detached });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) =>
        reject(new Error(`cannot start ${this.binary}: ${err.message}. Install nats-server (Debian: apt-get install nats-server).`)),
      );
      child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${stderr}`)));
    });
    failed.catch(() => undefined);
    if (this.port === -1) this.port = await Promise.race([readPort(portsDir, child.pid ?? 0), failed]);
    await Promise.race([waitForPort(this.port), failed]);
  }

  private async authorizationArgs(): Promise<string[]> {
    if (this.passwords === undefined) return [];
    const file = join(this.storeDir, 'authorization.conf');
    await writeFile(file, natsServerAuthorization(literalPasswords(this.passwords)), { mode: 0o600 });
    await chmod(file, 0o600);
    return ['-c', file];
  }

  /** Graceful stop (SIGTERM); the store is kept for {@link restart}. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Crash stop (SIGKILL), as in a node failure. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Starts again on the same port with the same JetStream store. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.launch();
  }

  /** Stops the server and deletes its temp dir. */
  async dispose(): Promise<void> {
    await this.kill();
    if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(sig);
    await exited;
  }
}

function clusterArgs(cluster: ClusterMembership | undefined): string[] {
  if (cluster === undefined) return [];
  return [
    ...['-n', cluster.serverName, '--cluster_name', cluster.clusterName],
    ...['--cluster', `nats://127.0.0.1:${cluster.routePort}`, '--routes', cluster.routes.join(',')],
  ];
}

async function readPort(portsDir: string, pid: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const files = await readdir(portsDir);
      const file = files.find((f) => f.includes(`_${pid}.ports`)) ?? files.find((f) => f.endsWith('.ports'));
      if (file !== undefined) {
        const ports = JSON.parse(await readFile(join(portsDir, file), 'utf8')) as { nats: string[] };
        const url = ports.nats[0];
        if (url !== undefined) return Number(new URL(url).port);
      }
    } catch {
      // the ports file appears once the server listens
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('nats-server did not write its ports file within 10 s');
}

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
