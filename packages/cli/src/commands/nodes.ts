import type { Command } from 'commander';
import type { XdsNodeStatus } from '@switchyard/control-plane/api';
import { cliOf } from '../cli.js';
import { table } from '../output.js';

/** "type.googleapis.com/envoy.config.cluster.v3.Cluster" → "Cluster". */
function typeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

/** `syctl nodes` (admin token). */
export function registerNodes(program: Command): void {
  program
    .command('nodes')
    .description('Connected xDS clients: per resource type the version ACKed and the last NACK (admin token)')
    .action(async (_opts: unknown, command: Command) => {
      const cli = cliOf(command);
      const response = await cli.client().request<{ nodes: XdsNodeStatus[] }>('GET', '/v1/nodes');
      cli.print(response.body, () =>
        table(
          ['NODE', 'CLUSTER', 'AGENT', 'TYPE', 'ACKED', 'LAST NACK'],
          response.body.nodes.flatMap((node) =>
            (node.resources.length === 0 ? [undefined] : node.resources).map((r) => [
              node.id,
              node.cluster,
              node.userAgent ?? '-',
              r === undefined ? '-' : typeName(r.typeUrl),
              r?.ackedVersion ?? '-',
              r?.lastNack == null ? '-' : `${r.lastNack.version ?? '?'}: ${r.lastNack.error}`,
            ]),
          ),
        ),
      );
    });
}
