export { buildProgram, run } from './main.js';
export { Cli, cliOf, createProgram, processIO, defaultApi, type CliIO, type GlobalOptions, type OutputFormat } from './cli.js';
export { ApiClient, ApiRequestError, type ApiResponse } from './client.js';
export { CliError, ExitCode, usageError } from './errors.js';
export { table, details, trafficText } from './output.js';
export { collectList, commandGroup, segment, withHint } from './commands/shared.js';
