import type { Command } from 'commander';
import { runLoad, useControlPlane, type LoadReport } from '@switchyard/demo';
import { cliOf } from '../cli.js';
import { usageError } from '../errors.js';
import { table } from '../output.js';
import { duration } from '@switchyard/shared';

/** `syctl load <domain>`: the built-in load generator, proxyless through the control plane or HTTP through Envoy. */
export function registerLoad(program: Command): void {
  program
    .command('load <domain>')
    .description('Generate load on a service: gRPC calls to xds:///<domain> (proxyless), or HTTP through Envoy with --envoy')
    .option('-c, --concurrency <n>', 'calls in flight at once', '20')
    .option('-d, --duration <duration>', 'how long, e.g. 30s', '30s')
    .option('--delay <duration>', 'how long the demo service holds each call (creates in-flight requests)', '100ms')
    .option('--xds <host:port>', 'control plane the proxyless client asks for its config (env SWITCHYARD_XDS)')
    .option('--envoy <url>', 'send HTTP to this Envoy listener with Host: <domain> instead, e.g. http://127.0.0.1:8080/')
    .action(
      async (
        domain: string,
        opts: { concurrency: string; duration: string; delay: string; xds?: string; envoy?: string },
        command: Command,
      ) => {
        const cli = cliOf(command);
        const concurrency = Number(opts.concurrency);
        if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000)
          throw usageError(`--concurrency must be 1–10000 (got "${opts.concurrency}")`);
        const durationMs = parseDuration('--duration', opts.duration);
        const delayMs = parseDuration('--delay', opts.delay);
        if (opts.envoy === undefined)
          await useControlPlane(opts.xds ?? cli.io.env.SWITCHYARD_XDS ?? '127.0.0.1:18000', `syctl-load-${process.pid}`);
        const target = opts.envoy ?? `xds:///${domain}`;
        const report = await runLoad({
          target,
          host: domain,
          concurrency,
          durationMs,
          delayMs,
          onProgress: cli.json ? undefined : (r) => cli.io.stdout(`${progressText(r)}\n`),
        });
        cli.print(report, () => summary(report));
      },
    );
}

function parseDuration(flag: string, text: string): number {
  const parsed = duration.safeParse(/^\d+$/.test(text) ? Number(text) : text);
  if (!parsed.success) throw usageError(`${flag} must be a duration such as 500ms, 30s or 2m (got "${text}")`);
  return parsed.data;
}

export function progressText(report: LoadReport): string {
  const revisions = new Map<string, number>();
  for (const [key, count] of Object.entries(report.byInstance)) {
    const revision = key.split(' ')[0] as string;
    revisions.set(revision, (revisions.get(revision) ?? 0) + count);
  }
  const split = [...revisions].map(([revision, count]) => `${revision} ${Math.round((100 * count) / Math.max(1, report.ok))}%`).join(' ');
  return `${(report.elapsedMs / 1000).toFixed(0).padStart(4)}s  ok ${report.ok}  failed ${report.failed}  instances ${Object.keys(report.byInstance).length}  ${split}`;
}

function summary(report: LoadReport): string {
  const rows = Object.entries(report.byInstance)
    .sort()
    .map(([instance, count]) => [instance, count, `${((100 * count) / Math.max(1, report.ok)).toFixed(1)}%`]);
  const errors = Object.entries(report.errors).map(([reason, count]) => `  ${count}× ${reason}`);
  return [
    `${report.calls} calls, ${report.ok} ok, ${report.failed} failed in ${(report.elapsedMs / 1000).toFixed(1)}s; p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms`,
    table(['REVISION INSTANCE', 'CALLS', 'SHARE'], rows),
    ...(errors.length > 0 ? ['errors:', ...errors] : []),
  ].join('\n');
}
