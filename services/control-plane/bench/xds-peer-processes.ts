import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * The processes of the side-by-side benchmark: the Go programs under bench/ (the peer harness
 * and the client fleet), built with the machine's Go into a cache directory, and a small
 * handle on a child that speaks JSON lines on stdout.
 */

/** The go command: $GO, then PATH, then Go's default install location. */
function findGo(): string {
  const candidates = [process.env.GO, 'go', '/usr/local/go/bin/go'].filter((c): c is string => c !== undefined && c !== '');
  for (const candidate of candidates) {
    if (spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  throw new Error(
    'this benchmark builds its Go programs (bench/peers/go-control-plane, bench/xds-fleet) and needs Go ≥ 1.26: ' +
      'install it (Debian/Ubuntu: the golang package of that version, or the official tarball into /usr/local/go) ' +
      'and put `go` on PATH, or set GO=/path/to/go',
  );
}

/** Builds `bench/<pkg>` into ~/.cache/switchyard/bench (Go's own cache makes rebuilds quick). */
export function buildGoProgram(repoRoot: string, pkg: string, name: string): string {
  const cacheDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard', 'bench');
  mkdirSync(cacheDir, { recursive: true });
  const output = join(cacheDir, name);
  const built = spawnSync(findGo(), ['build', '-o', output, `./${pkg}`], { cwd: join(repoRoot, 'bench'), stdio: 'inherit' });
  if (built.status !== 0 || !existsSync(output)) throw new Error(`go build ./${pkg} failed (exit ${built.status})`);
  return output;
}

/** A process and its descendants (a server's worker processes), from /proc. */
function processTree(pid: number): number[] {
  const children = (p: number): number[] => {
    try {
      return readdirSync(`/proc/${p}/task`).flatMap((tid) =>
        readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
      );
    } catch {
      return [];
    }
  };
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...children(tree[i]!));
  return tree;
}

/** CPU seconds (user + system) a process and its descendants have used, from /proc (clock ticks are 1/100 s on Linux). */
export function cpuSecondsOf(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

/** Peak resident set size of a process in MB (VmHWM), summed over it and its descendants. */
export function peakRssMbOf(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    if (match === null) throw new Error(`no VmHWM for process ${p}`);
    kb += Number(match[1]);
  }
  return kb / 1024;
}

type Line = Record<string, unknown>;

/** Children still running when the benchmark exits (finished or failed) are ended with it. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A child process that writes one JSON object per stdout line and may read commands on stdin. */
export class LineProcess {
  private readonly child: ChildProcess;
  private readonly lines: Line[] = [];
  private readonly waiting: { match: (line: Line) => boolean; resolve: (line: Line) => void }[] = [];
  private exited = false;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
  ) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    running.add(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (text) => this.onLine(text));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      running.delete(this.child);
      for (const w of this.waiting.splice(0)) w.resolve({ event: 'exit', code, signal });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onLine(text: string): void {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      process.stderr.write(`[${this.name}] ${text}\n`);
      return;
    }
    const i = this.waiting.findIndex((w) => w.match(line));
    if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(line);
    else this.lines.push(line);
  }

  /** The next line (already received or to come) that matches; rejects if the process exits first. */
  async next(match: (line: Line) => boolean, timeoutMs = 600_000): Promise<Line> {
    const i = this.lines.findIndex(match);
    if (i >= 0) return this.lines.splice(i, 1)[0]!;
    if (this.exited) throw new Error(`${this.name} has exited`);
    let timer: NodeJS.Timeout | undefined;
    const line = await new Promise<Line>((resolve, reject) => {
      this.waiting.push({ match, resolve });
      timer = setTimeout(() => reject(new Error(`${this.name}: timed out waiting`)), timeoutMs);
    }).finally(() => clearTimeout(timer));
    if (line.event === 'exit') throw new Error(`${this.name} exited (${String(line.code ?? line.signal)})`);
    return line;
  }

  nextEvent(event: string, timeoutMs?: number): Promise<Line> {
    return this.next((line) => line.event === event, timeoutMs);
  }

  send(command: string): void {
    this.child.stdin!.write(`${command}\n`);
  }

  /** Ends the process at once (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await gone;
  }
}
