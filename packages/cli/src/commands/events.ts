import type { Command } from 'commander';
import { formatEventJson, formatEventLine, watchEvents } from '@switchyard/event-streamer/client';
import { cliOf } from '../cli.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { collectList } from './shared.js';

/** Where the event-streamer's Watch API listens: all-in-one mode serves it on the control plane's gRPC port. */
export const defaultEventsAddress = '127.0.0.1:18000';

// gRPC status codes (see @grpc/grpc-js `status`) that say the server could not be reached.
const unreachableCodes = new Set([4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

/**
 * `syctl events [--follow] [--tenant t] [--service s] [--kind k] [--new] [-o json]`: service
 * status events from the event-streamer's Watch API, one line each — the retained ones, then
 * with --follow the new ones as they happen (resuming by itself when the stream is cut).
 */
export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('Service status events: revisions, traffic, deployments, scaling, instances, health, Envoy events')
    .option('-f, --follow', 'keep printing new events after the retained ones (Ctrl-C ends)')
    .option('--service <service>', 'only this service (needs a tenant)')
    .option(
      '--kind <kinds>',
      'only these kinds: status, deploy, scale, instance, health, envoy, xds (repeat or comma-separate)',
      collectList,
    )
    .option('--new', 'skip the retained events: only what happens from now on')
    .option('--events <host:port>', `the event-streamer's gRPC address (env SWITCHYARD_EVENTS, default ${defaultEventsAddress})`)
    .action(async (options: { follow?: boolean; service?: string; kind?: string[]; new?: boolean; events?: string }, command: Command) => {
      const cli = cliOf(command);
      const token = cli.options.token;
      if (token === undefined || token === '') throw usageError('no token: pass --token or set SWITCHYARD_TOKEN');
      const format = cli.json ? formatEventJson : formatEventLine;
      const address = options.events ?? cli.io.env.SWITCHYARD_EVENTS ?? defaultEventsAddress;
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      try {
        await watchEvents({
          address,
          token,
          ...(cli.options.tenant ? { tenant: cli.options.tenant } : {}),
          ...(options.service ? { service: options.service } : {}),
          ...(options.kind ? { kinds: options.kind } : {}),
          start: options.new ? 'now' : 'beginning',
          follow: options.follow ?? false,
          onEvent: (event) => cli.io.stdout(`${format(event)}\n`),
          onReconnect: (status) => cli.io.stderr(`stream ended (${status.details}); resuming\n`),
          signal: abort.signal,
        });
      } catch (err) {
        const code = (err as { code?: number }).code;
        const message = err instanceof Error ? err.message : String(err);
        if (code === undefined || !unreachableCodes.has(code)) throw new CliError(message, ExitCode.apiError);
        const reason = (err as { details?: string }).details ?? message;
        throw new CliError(
          `cannot reach the event-streamer's Watch API at ${address} (${reason}); start it (syctl up) or point ` +
            "--events <host:port> / SWITCHYARD_EVENTS at it (all-in-one serves it on the control plane's gRPC port)",
          ExitCode.unreachable,
        );
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}
