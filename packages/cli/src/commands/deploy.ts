import type { Command } from 'commander';
import type { DeploymentRecord, ServiceSpec } from '@switchyard/shared';
import type { ServiceView } from '@switchyard/control-plane/api';
import { cliOf, type Cli } from '../cli.js';
import { ApiRequestError } from '../client.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { segment } from './shared.js';
import { trafficText } from '../output.js';

type Deployment = Omit<DeploymentRecord, 'schemaVersion'>;

const finished = new Set(['completed', 'rolled_back', 'failed']);

/** `syctl deploy <service> --command …` and `syctl rollback <service>`, following progress live. */
export function registerDeploy(program: Command): void {
  program
    .command('deploy <service>')
    .description('Deploy a new revision: start it, shift traffic once it is healthy (blue-green or canary), roll back on failure')
    .option('--command <command>', 'command that runs an instance (the local provider sets PORT)')
    .option('--image <image>', 'container image of the new revision (needs a provider that runs images)')
    .option('--revision <name>', 'name of the new revision (default: generated)')
    .option('--env <NAME=value>', 'environment variable for the instances (repeatable)', (value: string, previous: string[] = []) => [
      ...previous,
      value,
    ])
    .option('--strategy <strategy>', 'blue-green (all at once) or canary (in steps)')
    .option('--steps <percents>', 'canary steps, e.g. 10,50,100')
    .option('--bake <duration>', 'how long each step is watched before the next, e.g. 30s')
    .option('--max-error-ratio <ratio>', '5xx ratio of the new revision that triggers a rollback, e.g. 0.05')
    .option('--no-wait', 'return once the deployment has started')
    .action(async (service: string, opts: DeployOptions, command: Command) => {
      const cli = cliOf(command);
      if ((opts.command === undefined) === (opts.image === undefined)) throw usageError('give exactly one of --command or --image');
      const body = deployBody(opts);
      const tenant = await cli.tenant();
      const started = await cli
        .client()
        .request<Deployment>('POST', `/v1/tenants/${segment(tenant)}/services/${segment(service)}/deployments`, { body });
      await follow(cli, tenant, service, started.body, opts.wait, { quietStart: false, succeeded: 'completed' });
    });

  program
    .command('rollback <service>')
    .description('Roll back: during a deployment restore the previous split at once; after one, deploy the previous revision again')
    .option('--reason <text>', 'recorded in the deployment')
    .option('--no-wait', 'return once the rollback has started')
    .action(async (service: string, opts: { reason?: string; wait: boolean }, command: Command) => {
      const cli = cliOf(command);
      const tenant = await cli.tenant();
      const base = `/v1/tenants/${segment(tenant)}/services/${segment(service)}`;
      const response = await cli
        .client()
        .request<Deployment>('POST', `${base}/rollback`, { body: opts.reason === undefined ? {} : { reason: opts.reason } })
        .catch(async (err: unknown) => {
          throw await withStaticRollbackHint(cli, tenant, service, err);
        });
      // 200: the running deployment was rolled back (done when it says rolled_back); 201: the previous revision is deployed again.
      await follow(cli, tenant, service, response.body, opts.wait, {
        quietStart: true,
        succeeded: response.status === 200 ? 'rolled_back' : 'completed',
      });
    });
}

interface DeployOptions {
  command?: string;
  image?: string;
  revision?: string;
  env?: string[];
  strategy?: string;
  steps?: string;
  bake?: string;
  maxErrorRatio?: string;
  wait: boolean;
}

export function deployBody(opts: DeployOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (opts.command !== undefined) body.command = opts.command;
  if (opts.image !== undefined) body.image = opts.image;
  if (opts.revision !== undefined) body.revision = opts.revision;
  if (opts.strategy !== undefined) body.strategy = opts.strategy;
  if (opts.bake !== undefined) body.bake = /^\d+$/.test(opts.bake) ? Number(opts.bake) : opts.bake;
  if (opts.steps !== undefined) {
    const steps = opts.steps.split(',').map((s) => Number(s.trim()));
    if (steps.some((s) => !Number.isInteger(s)))
      throw usageError(`--steps must be comma-separated percentages, e.g. 10,50,100 (got "${opts.steps}")`);
    body.steps = steps;
  }
  if (opts.maxErrorRatio !== undefined) {
    const ratio = Number(opts.maxErrorRatio);
    if (!Number.isFinite(ratio)) throw usageError(`--max-error-ratio must be a number between 0 and 1 (got "${opts.maxErrorRatio}")`);
    body.maxErrorRatio = ratio;
  }
  if (opts.env !== undefined) {
    const env: Record<string, string> = {};
    for (const pair of opts.env) {
      const at = pair.indexOf('=');
      if (at <= 0) throw usageError(`--env takes NAME=value (got "${pair}")`);
      env[pair.slice(0, at)] = pair.slice(at + 1);
    }
    body.env = env;
  }
  return body;
}

/** One line of progress: phase, split, the new revision's healthy instances, its error ratio, and the controller's message. */
export function progressLine(deployment: Deployment, status: ServiceView['status'] | undefined): string {
  const revision = status?.revisions.find((r) => r.name === deployment.revision);
  const ready = revision?.endpoints.filter((e) => e.state === 'ready' && e.health !== 'unhealthy').length ?? 0;
  const split = status
    ? trafficText(status.revisions.filter((r) => r.percent > 0).map((r) => ({ revision: r.name, percent: r.percent })))
    : '';
  const percent = status?.revisions.find((r) => r.name === deployment.revision)?.percent ?? 0;
  const bar = `[${'#'.repeat(Math.round(percent / 5)).padEnd(20, '.')}]`;
  return `${deployment.phase.padEnd(11)} ${bar} ${String(percent).padStart(3)}% on ${deployment.revision}  ${split}  ready ${ready}  — ${deployment.message}`;
}

/** How `follow` reports: whether it announces the start, and the phase that means the command did what was asked. */
interface FollowOptions {
  quietStart: boolean;
  succeeded: 'completed' | 'rolled_back';
}

async function follow(
  cli: Cli,
  tenant: string,
  service: string,
  initial: Deployment,
  wait: boolean,
  options: FollowOptions,
): Promise<void> {
  const { quietStart, succeeded } = options;
  if (!wait) {
    cli.print(initial, () => `deployment ${initial.id}: ${initial.message}`);
    return;
  }
  const client = cli.client();
  const base = `/v1/tenants/${segment(tenant)}/services/${segment(service)}`;
  const interactive = process.stdout.isTTY === true && !cli.json;
  let last = '';
  let deployment = initial;
  if (!quietStart && !cli.json) cli.io.stdout(`deploying ${initial.revision} (${initial.strategy}, deployment ${initial.id})\n`);
  for (;;) {
    const status = (await client.request<ServiceView>('GET', base)).body.status;
    const line = progressLine(deployment, status);
    if (!cli.json && line !== last) {
      cli.io.stdout(interactive ? `\r\x1b[2K${line}` : `${new Date().toISOString().slice(11, 19)} ${line}\n`);
      last = line;
    }
    if (finished.has(deployment.phase) && deployment.id === initial.id) break;
    await new Promise((r) => setTimeout(r, 500));
    deployment = (await client.request<Deployment>('GET', `${base}/deployment`)).body;
  }
  if (interactive) cli.io.stdout('\n');
  if (cli.json) cli.io.stdout(`${JSON.stringify(deployment, null, 2)}\n`);
  if (deployment.phase !== succeeded)
    throw new CliError(`deployment ${deployment.phase}: ${deployment.message}`, ExitCode.deploymentFailed);
}

/**
 * A rollback the API refuses because the revisions are static (no deployment runs them, so
 * there is nothing to undo) gets a hint with the `syctl traffic set` that does the job.
 */
async function withStaticRollbackHint(cli: Cli, tenant: string, service: string, err: unknown): Promise<unknown> {
  const refused = err instanceof ApiRequestError && (err.status === 404 || err.status === 400 || err.status === 409);
  if (!refused || err.issues.some((issue) => issue.field === 'path.tenant' || /no service/.test(issue.message))) return err;
  const client = cli.client();
  const base = `/v1/tenants/${segment(tenant)}/services/${segment(service)}`;
  const view = (await client.request<ServiceView & { spec: ServiceSpec }>('GET', base).catch(() => undefined))?.body;
  if (view === undefined) return err;
  const previous = (await client.request<Deployment>('GET', `${base}/deployment`).catch(() => undefined))?.body.previousRevision;
  const target = staticRollbackTarget(view, previous ?? null);
  if (target === undefined) return err;
  const tenantFlag = cli.options.tenant === undefined ? '' : ` --tenant ${tenant}`;
  return new CliError(
    `${err.message}\nhint: ${target.statics.join(', ')} ${target.statics.length === 1 ? 'has' : 'have'} static endpoints, which no ` +
      `deployment runs; shift traffic instead: syctl traffic set ${service} ${target.revision}=100${tenantFlag}`,
    ExitCode.apiError,
    err.body,
  );
}

/** Which static revision a rollback would return to: the previous one when known, else the static one serving least. */
export function staticRollbackTarget(
  view: Pick<ServiceView, 'status'> & { spec: Pick<ServiceSpec, 'revisions'> },
  previous: string | null,
): { revision: string; statics: string[] } | undefined {
  const statics = view.spec.revisions.filter((r) => r.endpoints !== undefined).map((r) => r.name);
  if (statics.length === 0) return undefined;
  if (previous !== null && statics.includes(previous)) return { revision: previous, statics };
  const percent = (name: string) => view.status.revisions.find((r) => r.name === name)?.percent ?? 0;
  const revision = [...statics].sort((a, b) => percent(a) - percent(b))[0] as string;
  return { revision, statics };
}
