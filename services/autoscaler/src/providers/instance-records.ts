import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { RevisionRef } from '@switchyard/shared';

/**
 * This machine's local instances on disk, so that they outlive the autoscaler that started
 * them: the next leader (or the same autoscaler restarted) adopts the ones still running.
 * One directory per instance under the state directory (mode 0700, the autoscaler's own):
 * `instance.json` (0600, replaced atomically) says what adoption needs, `stdout.log` and
 * `stderr.log` (0600) are the instance's output. The instance only holds file descriptors
 * for its two logs: it can neither list the directory nor read its own record.
 */

const instanceRecord = z.object({
  schemaVersion: z.literal(1),
  id: z.string().min(1),
  ref: z.object({ tenant: z.string(), service: z.string(), revision: z.string() }),
  pid: z.number().int().positive(),
  /** Field 22 of /proc/<pid>/stat: a pid reused by another process never matches it. */
  startTime: z.string().min(1),
  pgid: z.number().int().positive(),
  host: z.string(),
  port: z.number().int().positive(),
  /** The launch spec it runs (see `launchSpecHash`); an instance of another spec is replaced. */
  specHash: z.string(),
  sandboxDir: z.string(),
  startedAt: z.number(),
  readyAt: z.number().optional(),
});
export type InstanceRecord = z.infer<typeof instanceRecord>;

export interface ProcessIdentity {
  startTime: string;
  pgid: number;
}

/** A running process's start time and process group, or undefined when it is gone or a zombie. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, , pgrp] = fields;
  const startTime = fields[19];
  if (state === 'Z' || state === 'X' || startTime === undefined) return undefined;
  return { startTime, pgid: Number(pgrp) };
}

/** Whether the recorded process is still the one that runs (same pid and start time). */
export function recordedProcessAlive(record: Pick<InstanceRecord, 'pid' | 'startTime'>): boolean {
  return processIdentity(record.pid)?.startTime === record.startTime;
}

const recordFile = 'instance.json';

export class InstanceRecords {
  /** Creates the state directory (0700) or checks that the existing one is a directory only this user may enter. */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    const uid = process.getuid?.();
    if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o077) !== 0) {
      throw new Error(
        `LOCAL_STATE_DIR ${dir} must be a directory owned by uid ${uid} with mode 0700 (it holds records of running instances)`,
      );
    }
  }

  /** Where an instance's record and output live; names are DNS labels, so the dots separate them unambiguously. */
  instanceDir(ref: RevisionRef, id: string): string {
    return join(this.dir, `${ref.tenant}.${ref.service}.${id}`);
  }

  /** Opens the instance's output files (0600, appended to) for the child's stdout and stderr; the caller closes them after spawning. */
  openOutput(ref: RevisionRef, id: string): { stdout: number; stderr: number; close(): void } {
    const dir = this.instanceDir(ref, id);
    mkdirSync(dir, { mode: 0o700 });
    const stdout = openSync(join(dir, 'stdout.log'), 'a', 0o600);
    const stderr = openSync(join(dir, 'stderr.log'), 'a', 0o600);
    return { stdout, stderr, close: () => [stdout, stderr].forEach((fd) => closeSync(fd)) };
  }

  /** Writes the record atomically (a 0600 temporary file renamed over the old one). Synchronous: nothing runs between spawn and record. */
  write(record: InstanceRecord): void {
    const dir = this.instanceDir(record.ref, record.id);
    const temporary = join(dir, `${recordFile}.tmp`);
    writeFileSync(temporary, JSON.stringify(record), { mode: 0o600 });
    renameSync(temporary, join(dir, recordFile));
  }

  /** The instance's last `lines` stderr lines (read from the end of its file, at most 8 KiB). */
  stderrTail(ref: RevisionRef, id: string, lines = 10): string[] {
    let text: string;
    try {
      const fd = openSync(join(this.instanceDir(ref, id), 'stderr.log'), 'r');
      try {
        const { size } = fstatSync(fd);
        const length = Math.min(size, 8192);
        const buffer = Buffer.alloc(length);
        readSyncFully(fd, buffer, size - length);
        text = buffer.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .slice(-lines)
      .map((line) => (line.length > 4096 ? `${line.slice(0, 4096)}…` : line));
  }

  /**
   * Every valid record. Directories without one (a launch cut short between creating the
   * output files and writing the record, or a record that fails its schema) are removed once
   * a minute old, so that a launch in progress elsewhere is never taken for one.
   */
  list(): InstanceRecord[] {
    const records: InstanceRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      const dir = join(this.dir, name);
      const record = readRecord(dir);
      if (record !== undefined && this.instanceDir(record.ref, record.id) === dir) records.push(record);
      else if (ageMs(dir) > brokenAfterMs) rmSync(dir, { recursive: true, force: true });
    }
    return records;
  }

  /** Removes an instance's record and output. */
  remove(ref: RevisionRef, id: string): void {
    rmSync(this.instanceDir(ref, id), { recursive: true, force: true });
  }
}

const brokenAfterMs = 60_000;

function ageMs(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat === undefined ? 0 : Date.now() - stat.mtimeMs;
}

function readRecord(dir: string): InstanceRecord | undefined {
  try {
    const parsed = instanceRecord.safeParse(JSON.parse(readFileSync(join(dir, recordFile), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function readSyncFully(fd: number, buffer: Buffer, position: number): void {
  // readSync may return fewer bytes than asked for; loop until the buffer is full or the file ends.
  for (let offset = 0; offset < buffer.length;) {
    const n = readSync(fd, buffer, offset, buffer.length - offset, position + offset);
    if (n === 0) return;
    offset += n;
  }
}
