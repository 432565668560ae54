import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { ApiClient } from './client.js';
import { CliError, ExitCode, usageError } from './errors.js';

/** Where a command reads and writes; tests pass their own. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Reads a file; "-" reads standard input. */
  readFile(path: string): Promise<string>;
}

export function processIO(): CliIO {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    readFile: async (path) => {
      if (path !== '-') return readFile(path, 'utf8');
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

export type OutputFormat = 'table' | 'json';

export interface GlobalOptions {
  api: string;
  token: string | undefined;
  tenant: string | undefined;
  output: OutputFormat;
}

export const defaultApi = 'http://127.0.0.1:8080';

const ioByProgram = new WeakMap<Command, CliIO>();

/** The root `syctl` command with the global options; commands are added by `register<Thing>(program)`. */
export function createProgram(io: CliIO): Command {
  const program = new Command('syctl')
    .description('Manage Switchyard: tenants, tokens, services, traffic, deployments, events, load and the xDS clients.')
    .version('0.1.0')
    .addOption(new Option('--api <url>', `management API URL (env SWITCHYARD_API, default ${defaultApi})`))
    .addOption(new Option('--token <token>', 'bearer token: the admin token or a tenant token (env SWITCHYARD_TOKEN)'))
    .addOption(new Option('--tenant <tenant>', 'tenant to act on (env SWITCHYARD_TENANT; a tenant token implies its own)'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 the API answered with an error, 2 usage or input file error, 3 the API cannot be reached,\n4 a followed deployment was rolled back or failed.',
  );
  ioByProgram.set(program, io);
  return program;
}

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root;
}

/** What a command's action works with: the IO, the global options, an API client. */
export class Cli {
  constructor(
    readonly io: CliIO,
    readonly options: GlobalOptions,
  ) {}

  get json(): boolean {
    return this.options.output === 'json';
  }

  client(): ApiClient {
    if (this.options.token === undefined || this.options.token === '') {
      throw usageError('no token: pass --token or set SWITCHYARD_TOKEN (the admin token, or one from "syctl token create <tenant>")');
    }
    return new ApiClient(this.options.api, this.options.token);
  }

  /** The tenant to act on: --tenant, SWITCHYARD_TENANT, the given fallback, or the tenant token's own. */
  async tenant(fallback?: string): Promise<string> {
    const explicit = this.options.tenant ?? fallback;
    if (explicit !== undefined && explicit !== '') return explicit;
    const who = await this.client().request<{ role: string; tenant: string | null }>('GET', '/v1/whoami');
    if (who.body.tenant !== null) return who.body.tenant;
    throw usageError('no tenant: pass --tenant or set SWITCHYARD_TENANT (the admin token belongs to no tenant)');
  }

  /** Prints `data` as JSON with `-o json`, otherwise the text (a table). */
  print(data: unknown, text: () => string): void {
    this.io.stdout(this.json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
  }
}

/** The context of a command's action (pass the command commander hands to the action). */
export function cliOf(command: Command): Cli {
  const root = rootOf(command);
  const io = ioByProgram.get(root);
  if (io === undefined) throw new Error('command is not part of a program made by createProgram');
  const opts = command.optsWithGlobals<{ api?: string; token?: string; tenant?: string; output: OutputFormat }>();
  return new Cli(io, {
    api: opts.api ?? io.env.SWITCHYARD_API ?? defaultApi,
    token: opts.token ?? io.env.SWITCHYARD_TOKEN,
    tenant: opts.tenant ?? io.env.SWITCHYARD_TENANT,
    output: opts.output,
  });
}

/** Prints an error the way scripts and people expect and returns the exit code. */
export function reportError(err: unknown, program: Command, io: CliIO): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message already.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof CliError) {
    const json = program.opts<{ output?: string }>().output === 'json';
    io.stderr(json && err.body !== undefined ? `${JSON.stringify(err.body, null, 2)}\n` : `error: ${err.message}\n`);
    return err.exitCode;
  }
  io.stderr(`error: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.apiError;
}
