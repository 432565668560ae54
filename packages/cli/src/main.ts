#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { createProgram, processIO, reportError, type CliIO } from './cli.js';
import { registerNodes } from './commands/nodes.js';
import { registerService } from './commands/service.js';
import { registerTenant } from './commands/tenant.js';
import { registerToken } from './commands/token.js';
import { registerTraffic } from './commands/traffic.js';
import { registerDeploy } from './commands/deploy.js';
import { registerLoad } from './commands/load.js';
import { registerEvents } from './commands/events.js';
import { registerUp } from './commands/up.js';

/** `syctl` with every command. A new command is a file in commands/ exporting `register<Thing>(program)`, added here. */
export function buildProgram(io: CliIO): Command {
  const program = createProgram(io);
  registerTenant(program);
  registerToken(program);
  registerService(program);
  registerTraffic(program);
  registerNodes(program);
  registerDeploy(program);
  registerLoad(program);
  registerEvents(program);
  registerUp(program);
  return program;
}

/** Runs `syctl` with `args` (without "node syctl") and resolves with the exit code. */
export async function run(args: string[], io: CliIO = processIO()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err, program, io);
  }
}

/** Resolves once everything written to `stream` so far has been handed to the OS (a pipe may lag behind the writes). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/**
 * A reader that went away (`syctl events | head -1`) is the end of the output, not a failure:
 * exit quietly, as `cat` and `yes` do.
 */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && realpathSync(invokedPath) === fileURLToPath(import.meta.url)) {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
  const code = await run(process.argv.slice(2));
  // Exit explicitly (long-running commands leave gRPC channels and timers behind), but only once
  // the output has drained: process.exit drops what a slow pipe has not taken yet.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
