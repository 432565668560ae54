/** Exit codes scripts can rely on. */
export const ExitCode = {
  ok: 0,
  /** The API answered with an error (4xx/5xx); its field messages are printed. */
  apiError: 1,
  /** The command line or an input file is wrong; nothing was sent. */
  usage: 2,
  /** The API could not be reached. */
  unreachable: 3,
  /** A deployment that was followed ended rolled back or failed. */
  deploymentFailed: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the command with a message (to stderr) and a documented exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** The API's error body, printed as is with `-o json`. */
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.usage);
}
