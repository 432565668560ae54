import type { Command } from 'commander';
import { formatEventJson, formatEventLine, watchEvents } from '@switchyard/event-streamer/client';

/**
 * `syctl events [--follow] [--tenant t] [--service s] [--kind k...] [--new] [-o json]`:
 * prints service status events from the event-streamer's Watch API — the retained ones, then
 * (with --follow) new ones as they happen, resuming by itself if the stream is cut.
 */

export interface EventsOptions {
  follow?: boolean;
  tenant?: string;
  service?: string;
  kind?: string[];
  new?: boolean;
  output: string;
  server: string;
  token?: string;
}

interface Output {
  write(text: string): unknown;
}

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('Show service status events: revisions, traffic, deployments, scaling, instances, health, Envoy events')
    .option('-f, --follow', 'keep printing new events after the retained ones')
    .option('--tenant <tenant>', 'only this tenant (a tenant token always sees only its own)')
    .option('--service <service>', 'only this service (needs --tenant)')
    .option('--kind <kind...>', 'only these kinds: status, deploy, scale, instance, health, envoy, xds')
    .option('--new', 'skip the retained events: only what happens from now on')
    .option('-o, --output <format>', 'text, or json for one JSON object per line', 'text')
    .option('--server <host:port>', 'gRPC address of the event-streamer', process.env.SWITCHYARD_EVENTS_ADDR ?? '127.0.0.1:18000')
    .option('--token <token>', 'bearer token (default: $SWITCHYARD_TOKEN, then $SWITCHYARD_ADMIN_TOKEN)')
    .action(async (options: EventsOptions) => {
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      try {
        process.exitCode = await runEvents(options, { stdout: process.stdout, stderr: process.stderr, signal: abort.signal });
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}

/** Runs the command; returns the exit code (0 done, 1 refused or failed, 2 bad usage). */
export async function runEvents(options: EventsOptions, io: { stdout: Output; stderr: Output; signal?: AbortSignal }): Promise<number> {
  if (options.output !== 'text' && options.output !== 'json') {
    io.stderr.write(`syctl events: -o must be text or json, not "${options.output}"\n`);
    return 2;
  }
  const token = options.token ?? process.env.SWITCHYARD_TOKEN ?? process.env.SWITCHYARD_ADMIN_TOKEN;
  if (token === undefined || token === '') {
    io.stderr.write('syctl events: no token: pass --token or set SWITCHYARD_TOKEN\n');
    return 2;
  }
  const format = options.output === 'json' ? formatEventJson : formatEventLine;
  try {
    await watchEvents({
      address: options.server,
      token,
      ...(options.tenant ? { tenant: options.tenant } : {}),
      ...(options.service ? { service: options.service } : {}),
      ...(options.kind ? { kinds: options.kind } : {}),
      start: options.new ? 'now' : 'beginning',
      follow: options.follow ?? false,
      onEvent: (event) => io.stdout.write(`${format(event)}\n`),
      onReconnect: (status) => io.stderr.write(`syctl events: stream ended (${status.details}); resuming\n`),
      ...(io.signal ? { signal: io.signal } : {}),
    });
    return 0;
  } catch (err) {
    io.stderr.write(`syctl events: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
