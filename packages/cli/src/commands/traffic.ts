import type { Command } from 'commander';
import type { ServiceView } from '@switchyard/control-plane/api';
import { cliOf } from '../cli.js';
import { table } from '../output.js';
import { parseTrafficSplit } from '../service-file.js';
import { commandGroup, segment } from './shared.js';

/** `syctl traffic set <service> blue=90 green=10`. */
export function registerTraffic(program: Command): void {
  const traffic = commandGroup(program, 'traffic', "Split a service's traffic between its revisions");

  traffic
    .command('set <service> <split...>')
    .description('Set the percentages per revision (they must sum to 100), e.g. blue=90 green=10')
    .action(async (name: string, split: string[], _opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const body = { traffic: parseTrafficSplit(split) };
      const tenant = await cli.tenant();
      const response = await cli
        .client()
        .request<ServiceView>('PUT', `/v1/tenants/${segment(tenant)}/services/${segment(name)}/traffic`, { body });
      cli.print(response.body, () =>
        table(
          ['REVISION', 'TRAFFIC'],
          response.body.status.revisions.map((r) => [r.name, `${r.percent}%`]),
        ),
      );
    });
}
