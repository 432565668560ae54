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

const invokedPath = process.argv[1];
if (invokedPath !== undefined && realpathSync(invokedPath) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run(process.argv.slice(2));
}
