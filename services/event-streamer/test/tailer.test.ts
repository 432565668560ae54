import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTailer, type TailerOptions } from '../src/tailer.js';

describe('FileTailer', () => {
  let dir: string;
  let path: string;
  let lines: string[];
  let dropped: string[];
  let tailer: FileTailer;

  const follow = (options: TailerOptions = {}) => {
    tailer = new FileTailer(path, { line: (l) => lines.push(l), dropped: (r) => dropped.push(r) }, options);
    return tailer;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-tailer-'));
    path = join(dir, 'health.log');
    lines = [];
    dropped = [];
  });
  afterEach(async () => {
    await tailer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts at the end of an existing file and picks up appended lines', async () => {
    await writeFile(path, '{"old":1}\n');
    follow();
    await tailer.poll();
    await appendFile(path, '{"a":1}\n{"b":2}\n');
    await tailer.poll();
    await appendFile(path, '{"c":3}\r\n\n');
    await tailer.poll();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(dropped).toEqual([]);
  });

  it('reads a file from the top when asked to', async () => {
    await writeFile(path, '{"old":1}\n');
    follow({ from: 'start' });
    await tailer.poll();
    expect(lines).toEqual(['{"old":1}']);
  });

  it('waits for a file that does not exist yet and reads it whole once it appears', async () => {
    follow();
    await tailer.poll();
    await writeFile(path, '{"first":1}\n');
    await tailer.poll();
    expect(lines).toEqual(['{"first":1}']);
  });

  it('holds a half-written line until its newline arrives', async () => {
    follow();
    await tailer.poll();
    await appendFile(path, '{"health_checker_type":"HT');
    await tailer.poll();
    expect(lines).toEqual([]);
    await appendFile(path, 'TP","cluster_name":"x"}\n{"next":');
    await tailer.poll();
    expect(lines).toEqual(['{"health_checker_type":"HTTP","cluster_name":"x"}']);
    await appendFile(path, 'true}\n');
    await tailer.poll();
    expect(lines).toEqual(['{"health_checker_type":"HTTP","cluster_name":"x"}', '{"next":true}']);
    expect(dropped).toEqual([]);
  });

  it('keeps multi-byte characters split across reads intact', async () => {
    follow();
    await tailer.poll();
    const line = Buffer.from('{"name":"café ✓"}\n');
    await appendFile(path, line.subarray(0, 14));
    await tailer.poll();
    await appendFile(path, line.subarray(14));
    await tailer.poll();
    expect(lines).toEqual(['{"name":"café ✓"}']);
  });

  it('follows rotation: reads the old file to its end, drops its half-written line, then reads the new file', async () => {
    await writeFile(path, '');
    follow();
    await tailer.poll();
    await appendFile(path, '{"before":1}\n');
    await tailer.poll();
    await appendFile(path, '{"late":2}\n{"half":');
    await rename(path, `${path}.1`);
    await writeFile(path, '{"after":3}\n');
    await tailer.poll();
    expect(lines).toEqual(['{"before":1}', '{"late":2}', '{"after":3}']);
    expect(dropped).toEqual(['partial_line']);
    await appendFile(path, '{"more":4}\n');
    await tailer.poll();
    expect(lines.at(-1)).toBe('{"more":4}');
  });

  it('follows a file that is removed and created again later', async () => {
    await writeFile(path, '');
    follow();
    await tailer.poll();
    await rm(path);
    await tailer.poll();
    await writeFile(path, '{"again":1}\n');
    await tailer.poll();
    expect(lines).toEqual(['{"again":1}']);
  });

  it('starts again from the top after truncation (copytruncate)', async () => {
    await writeFile(path, '');
    follow();
    await tailer.poll();
    await appendFile(path, '{"one":1}\n{"two":2}\n{"cut');
    await tailer.poll();
    await truncate(path, 0);
    await appendFile(path, '{"x":9}\n');
    await tailer.poll();
    expect(lines).toEqual(['{"one":1}', '{"two":2}', '{"x":9}']);
    expect(dropped).toEqual(['partial_line']);
  });

  it('drops a line longer than the limit and carries on with the next', async () => {
    follow({ maxLineBytes: 16 });
    await tailer.poll();
    await appendFile(path, `{"long":"${'x'.repeat(40)}`);
    await tailer.poll();
    await appendFile(path, `${'y'.repeat(40)}"}\n{"ok":1}\n`);
    await tailer.poll();
    expect(lines).toEqual(['{"ok":1}']);
    expect(dropped).toEqual(['line_too_long']);
  });

  it('reads large appends in several chunks', async () => {
    follow();
    await tailer.poll();
    const many = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(20) }));
    await appendFile(path, `${many.join('\n')}\n`);
    await tailer.poll();
    expect(lines).toEqual(many);
  });
});
