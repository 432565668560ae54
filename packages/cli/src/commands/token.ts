import type { Command } from 'commander';
import { cliOf } from '../cli.js';
import { commandGroup, segment } from './shared.js';

/** `syctl token create <tenant>` (admin token). */
export function registerToken(program: Command): void {
  const token = commandGroup(program, 'token', 'Issue tenant tokens (admin token)');

  token
    .command('create <tenant>')
    .description('Issue a token that reaches only this tenant; printed once, stored only hashed')
    .action(async (tenant: string, _opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const response = await cli.client().request<{ tenant: string; token: string }>('POST', `/v1/tenants/${segment(tenant)}/tokens`);
      // The bare token on stdout, so `export SWITCHYARD_TOKEN=$(syctl token create acme)` works.
      cli.print(response.body, () => response.body.token);
      if (!cli.json) cli.io.stderr(`token for tenant "${tenant}": shown only now, keep it safe\n`);
    });
}
