import type { Command } from 'commander';
import type { ServiceView } from '@switchyard/control-plane/api';
import { ApiRequestError } from '../client.js';
import { cliOf, type Cli } from '../cli.js';
import { usageError } from '../errors.js';
import { details, table, trafficText } from '../output.js';
import { parseServiceFile } from '../service-file.js';
import { commandGroup, segment } from './shared.js';

interface ServiceSummary {
  name: string;
  domains: string[];
  protocol: string;
  revisions: string[];
  traffic: { revision: string; percent: number }[];
  revision: number;
  updatedAt: number;
}

function xdsText(status: ServiceView['status']): string {
  if (status.xds === null) return 'no xDS engine reports to this API';
  const count = (state: string) => status.xds?.nodes.filter((n) => n.state === state).length ?? 0;
  const nacks = status.xds.nodes.filter((n) => n.state === 'NACKED').map((n) => `\n  ${n.node}: ${n.error ?? 'NACK'}`);
  return `version ${status.xds.version ?? '(not translated yet)'}: ${count('ACKED')} ACKED, ${count('NACKED')} NACKED, ${count('PENDING')} PENDING${nacks.join('')}`;
}

/** The human view of one service: its facts, then one row per revision. */
export function serviceText(view: ServiceView): string {
  const spec = view.spec as { domains: string[]; protocol: string } | null;
  const head = details([
    ['SERVICE', `${view.tenant}/${view.name}`],
    ['DOMAINS', spec?.domains.join(', ') ?? '-'],
    ['PROTOCOL', spec?.protocol ?? '-'],
    ['REVISION', `${view.revision} (updated ${new Date(view.updatedAt).toISOString()})`],
    ['XDS', xdsText(view.status)],
    ...view.errors.map((e): [string, string] => [`ERROR (${e.source})`, `${e.field}: ${e.message}`]),
  ]);
  const revisions = table(
    ['REVISION', 'TRAFFIC', 'SOURCE', 'ENDPOINTS'],
    view.status.revisions.map((r) => [
      r.name,
      `${r.percent}%`,
      r.source,
      r.endpoints.length === 0 ? '-' : r.endpoints.map((e) => `${e.address}:${e.port} ${e.state}/${e.health}`).join(', '),
    ]),
  );
  return `${head}\n\n${revisions}`;
}

/** `syctl service apply|get|list|delete`. */
export function registerService(program: Command): void {
  const service = commandGroup(program, 'service', "Apply, read and delete a tenant's services");

  service
    .command('apply')
    .description('Create or replace a service from a YAML or JSON file')
    .requiredOption('-f, --file <path>', 'the service file ("-" reads standard input)')
    .option('--name <service>', 'service name (overrides "name" in the file)')
    .action(async (opts: { file: string; name?: string }, command: Command) => {
      const cli = cliOf(command);
      let text: string;
      try {
        text = await cli.io.readFile(opts.file);
      } catch (err) {
        throw usageError(`cannot read ${opts.file}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const file = parseServiceFile(text, opts.file);
      const name = opts.name ?? file.name;
      if (name === undefined) throw usageError(`no service name: add "name: <service>" to ${opts.file} or pass --name`);
      const tenant = await tenantOfFile(cli, file.tenant, opts.file);
      const client = cli.client();
      const path = `/v1/tenants/${segment(tenant)}/services/${segment(name)}`;
      // Replace exactly the version read (or create only if there was none): a concurrent change makes the PUT a 412
      // instead of a lost update.
      const current = await client.request<ServiceView>('GET', path).catch((err: unknown) => {
        if (err instanceof ApiRequestError && err.status === 404 && err.issues.some((i) => i.field === 'path.service')) return undefined;
        throw err;
      });
      const response = await client.request<ServiceView>('PUT', path, {
        body: file.spec,
        ...(current?.etag === undefined ? { ifNoneMatch: '*' } : { ifMatch: current.etag }),
      });
      const verb = response.status === 201 ? 'created' : response.etag === current?.etag ? 'unchanged' : 'configured';
      cli.print(response.body, () => `service "${name}" ${verb} in tenant "${tenant}" (revision ${response.body.revision})`);
    });

  service
    .command('get <service>')
    .description('Show a service: domains, revisions with traffic and endpoints, xDS delivery')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const tenant = await cli.tenant();
      const response = await cli.client().request<ServiceView>('GET', `/v1/tenants/${segment(tenant)}/services/${segment(name)}`);
      cli.print(response.body, () => serviceText(response.body));
    });

  service
    .command('list')
    .description("List the tenant's services")
    .action(async (_opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const tenant = await cli.tenant();
      const response = await cli.client().request<{ services: ServiceSummary[] }>('GET', `/v1/tenants/${segment(tenant)}/services`);
      cli.print(response.body, () =>
        table(
          ['NAME', 'DOMAINS', 'PROTOCOL', 'TRAFFIC', 'REVISION'],
          response.body.services.map((s) => [s.name, s.domains.join(','), s.protocol, trafficText(s.traffic), s.revision]),
        ),
      );
    });

  service
    .command('delete <service>')
    .description('Delete a service')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const tenant = await cli.tenant();
      await cli.client().request('DELETE', `/v1/tenants/${segment(tenant)}/services/${segment(name)}`);
      cli.print({ tenant, service: name, deleted: true }, () => `service "${name}" deleted from tenant "${tenant}"`);
    });
}

/**
 * The tenant a service file applies to: --tenant / SWITCHYARD_TENANT, the file's `tenant:`, or the
 * tenant token's own. A file's `tenant:` that disagrees with either is said as such, instead of
 * the 404 another tenant's path answers.
 */
async function tenantOfFile(cli: Cli, fileTenant: string | undefined, path: string): Promise<string> {
  if (fileTenant === undefined) return cli.tenant();
  const given = cli.options.tenant;
  if (given !== undefined && given !== '' && given !== fileTenant) {
    throw usageError(`${path} says tenant: "${fileTenant}", but --tenant / SWITCHYARD_TENANT says "${given}"; make them agree`);
  }
  const who = await cli.client().request<{ role: string; tenant: string | null }>('GET', '/v1/whoami');
  if (who.body.tenant !== null && who.body.tenant !== fileTenant) {
    throw usageError(
      `${path} says tenant: "${fileTenant}", but the token belongs to tenant "${who.body.tenant}"; ` +
        `use a token of "${fileTenant}" or change the file's tenant`,
    );
  }
  return fileTenant;
}
