import { open, stat, type FileHandle } from 'node:fs/promises';

/**
 * Follows a JSON-lines file the way `tail -F` does: picks up lines as they are appended,
 * survives rotation (the path now names a new file: the old one is read to its end first)
 * and truncation (copytruncate: start again from the top), waits for a file that does not
 * exist yet, and only hands out complete lines. A line still unterminated when its file is
 * rotated away or truncated was half-written and is reported as dropped.
 */

export interface TailerEvents {
  line: (line: string) => void;
  /** A line that could not be used: half-written at rotation or truncation, or too long. */
  dropped: (reason: 'partial_line' | 'line_too_long') => void;
}

export interface TailerOptions {
  /** Start at the end of a file that exists at start (default), or read it from the top. */
  from?: 'end' | 'start';
  maxLineBytes?: number;
}

const chunkBytes = 64 * 1024;

export class FileTailer {
  private handle: FileHandle | undefined;
  private inode = -1;
  private position = 0;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Skipping the rest of a line that exceeded maxLineBytes. */
  private skipping = false;
  /** Only a file that exists when tailing starts is read from its end; later ones are new. */
  private startAtEnd: boolean;
  private polling: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly events: TailerEvents,
    private readonly options: TailerOptions = {},
  ) {
    this.startAtEnd = (options.from ?? 'end') === 'end';
  }

  /** Reads whatever is new. Concurrent calls share one read. */
  poll(): Promise<void> {
    this.polling ??= this.readNew().finally(() => (this.polling = undefined));
    return this.polling;
  }

  async close(): Promise<void> {
    await this.polling;
    await this.handle?.close();
    this.handle = undefined;
  }

  private async readNew(): Promise<void> {
    if (this.handle === undefined && !(await this.openCurrent())) return;
    const handle = this.handle as FileHandle;
    if ((await handle.stat()).size < this.position) {
      this.dropPartial();
      this.position = 0;
    }
    await this.drain(handle);
    const current = await stat(this.path).catch(() => undefined);
    if (current !== undefined && current.ino === this.inode) return;
    // Rotated (or removed): the old file was read to its end above; what is unterminated stays so.
    this.dropPartial();
    await handle.close();
    this.handle = undefined;
    if (current !== undefined && (await this.openCurrent()) && this.handle !== undefined) await this.drain(this.handle);
  }

  private async openCurrent(): Promise<boolean> {
    const startAtEnd = this.startAtEnd;
    this.startAtEnd = false;
    let handle: FileHandle;
    try {
      handle = await open(this.path, 'r');
    } catch {
      return false;
    }
    const info = await handle.stat();
    this.handle = handle;
    this.inode = info.ino;
    this.position = startAtEnd ? info.size : 0;
    return true;
  }

  private async drain(handle: FileHandle): Promise<void> {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      this.split(buffer.subarray(0, bytesRead));
    }
  }

  private split(chunk: Buffer): void {
    const max = this.options.maxLineBytes ?? 1024 * 1024;
    let start = 0;
    for (let newline = chunk.indexOf(10, start); newline !== -1; newline = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      const line = this.partialBytes === 0 ? piece.toString('utf8') : Buffer.concat([...this.partial, piece]).toString('utf8');
      this.partial = [];
      this.partialBytes = 0;
      const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (trimmed.trim() !== '') this.events.line(trimmed);
    }
    if (start >= chunk.length || this.skipping) return;
    const rest = Buffer.from(chunk.subarray(start));
    this.partial.push(rest);
    this.partialBytes += rest.length;
    if (this.partialBytes > max) {
      this.partial = [];
      this.partialBytes = 0;
      this.skipping = true;
      this.events.dropped('line_too_long');
    }
  }

  private dropPartial(): void {
    if (this.partialBytes > 0) this.events.dropped('partial_line');
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
  }
}
