import type { Command } from 'commander';
import { ApiRequestError } from '../client.js';
import { CliError, ExitCode } from '../errors.js';

/** A path segment: names go into URLs as one segment, whatever they contain (the API validates them). */
export const segment = encodeURIComponent;

/** Commander collector for an option that may be repeated and comma-separated. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== ''),
  ];
}

/** Adds a hint on what to do next when the API refuses with `status` and an issue on `field`. */
export async function withHint<T>(when: { status: number; field: string }, hint: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof ApiRequestError && err.status === when.status && err.issues.some((issue) => issue.field === when.field)) {
      throw new CliError(`${err.message}\nhint: ${hint}`, ExitCode.apiError, err.body);
    }
    throw err;
  }
}

/** The group command `name` (e.g. "service"), created on first use so several files can add subcommands. */
export function commandGroup(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}
