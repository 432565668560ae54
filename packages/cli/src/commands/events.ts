import type { Command } from 'commander';
import { grpcClientCredentials } from '@switchyard/shared';
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
      const credentials = clientCredentials(cli.io.env);
      const address = options.events ?? cli.io.env.SWITCHYARD_EVENTS ?? defaultEventsAddress;
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      try {
        await watchEvents({
          ...(credentials ? { credentials } : {}),
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

const tlsVariables = ['SWITCHYARD_TLS_CA', 'SWITCHYARD_TLS_CERT', 'SWITCHYARD_TLS_KEY'] as const;

/**
 * A standalone event-streamer serves mutual TLS: the client certificate (the `tools` identity of
 * deploy/tls/make-certs.sh) comes from SWITCHYARD_TLS_CA, SWITCHYARD_TLS_CERT and
 * SWITCHYARD_TLS_KEY, all three or none (plaintext, for the all-in-one).
 */
function clientCredentials(env: Record<string, string | undefined>) {
  const missing = tlsVariables.filter((name) => !env[name]);
  if (missing.length === tlsVariables.length) return undefined;
  if (missing.length > 0)
    throw usageError(`${missing.join(', ')} must be set with ${tlsVariables.filter((n) => !missing.includes(n)).join(', ')}`);
  try {
    return grpcClientCredentials({ caFile: env.SWITCHYARD_TLS_CA!, certFile: env.SWITCHYARD_TLS_CERT!, keyFile: env.SWITCHYARD_TLS_KEY! });
  } catch (err) {
    throw usageError(`cannot read the client certificate: ${(err as Error).message}`);
  }
}
