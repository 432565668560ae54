import type { Command } from 'commander';
import type { TenantView } from '@switchyard/control-plane/api';
import { cliOf } from '../cli.js';
import { table } from '../output.js';
import { collectList, commandGroup, segment, withHint } from './shared.js';

/** `syctl tenant create|update|list|delete` (admin token). */
export function registerTenant(program: Command): void {
  const tenant = commandGroup(program, 'tenant', 'Create tenants and grant them domains (admin token)');

  tenant
    .command('create <name>')
    .description('Create a tenant and grant it domains; each covers itself and all its subdomains')
    .requiredOption('--domain <domain>', 'a granted domain; repeat the option or comma-separate', collectList)
    .action(async (name: string, opts: { domain: string[] }, command: Command) => {
      const cli = cliOf(command);
      const response = await withHint(
        { status: 412, field: 'header.if-none-match' },
        `to change its grant: syctl tenant update ${name} --domain …`,
        () => cli.client().request<TenantView>('PUT', `/v1/tenants/${segment(name)}`, { body: { domains: opts.domain }, ifNoneMatch: '*' }),
      );
      cli.print(response.body, () => `tenant "${name}" created; granted: ${response.body.domains.join(', ')}`);
    });

  tenant
    .command('update <name>')
    .description("Replace a tenant's domain grant")
    .requiredOption('--domain <domain>', 'a granted domain; repeat the option or comma-separate', collectList)
    .action(async (name: string, opts: { domain: string[] }, command: Command) => {
      const cli = cliOf(command);
      const client = cli.client();
      const current = await client.request<TenantView>('GET', `/v1/tenants/${segment(name)}`);
      const response = await client.request<TenantView>('PUT', `/v1/tenants/${segment(name)}`, {
        body: { domains: opts.domain },
        ...(current.etag === undefined ? {} : { ifMatch: current.etag }),
      });
      cli.print(response.body, () => `tenant "${name}" updated; granted: ${response.body.domains.join(', ')}`);
    });

  tenant
    .command('list')
    .description('List tenants with their grants')
    .action(async (_opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const response = await cli.client().request<{ tenants: TenantView[] }>('GET', '/v1/tenants');
      cli.print(response.body, () =>
        table(
          ['NAME', 'DOMAINS', 'SERVICES', 'REVISION'],
          response.body.tenants.map((t) => [t.name, t.domains.join(','), t.services, t.revision]),
        ),
      );
    });

  tenant
    .command('delete <name>')
    .description('Delete a tenant and everything under it: its services, deployments and tokens')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const cli = cliOf(command);
      await cli.client().request('DELETE', `/v1/tenants/${segment(name)}`);
      cli.print({ tenant: name, deleted: true }, () => `tenant "${name}" deleted`);
    });
}
