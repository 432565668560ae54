import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer, freePort } from '@switchyard/shared/testing';
import {
  Api,
  LoadLoop,
  allServices,
  eventually,
  fastEnv,
  grpcEchoCommand,
  startStack,
  xdsEchoClient,
  type EchoClient,
  type Stack,
} from '../support/stack.js';
import { repoPath, requireCommand } from './support.js';

interface Dashboard {
  panels?: { title: string; targets?: { expr?: string }[] }[];
}

/** Grafana's variables in a dashboard query, filled in the way the dashboards' "All" choices do. */
function concrete(expr: string): string {
  return expr.replaceAll('$__rate_interval', '10s').replace(/\$(job|tenant|service|revision)\b/g, '.+');
}

async function dashboardQueries(file: string): Promise<{ panel: string; expr: string }[]> {
  const dashboard = JSON.parse(await readFile(repoPath('deploy/grafana/dashboards', file), 'utf8')) as Dashboard;
  return (dashboard.panels ?? []).flatMap((panel) =>
    (panel.targets ?? []).flatMap((target) => (target.expr ? [{ panel: panel.title, expr: concrete(target.expr) }] : [])),
  );
}

/**
 * A real Prometheus (Debian's) scrapes the all-in-one's /metrics while a proxyless gRPC client
 * sends load through it; the Grafana dashboards' queries then return data.
 */
describe('Prometheus scraping the all-in-one', () => {
  let nats: NatsServer;
  let stack: Stack;
  let client: EchoClient | undefined;
  let load: LoadLoop | undefined;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl: string;
  let dir: string;

  beforeAll(async () => {
    requireCommand('prometheus', ['--version'], 'scripts/setup.sh installs it (Debian package prometheus)');
    nats = await NatsServer.start();
    stack = await startStack(nats, allServices, { env: fastEnv });
    const api = new Api(stack.apiUrl);
    await api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      protocol: 'grpc',
      revisions: [{ name: 'blue', command: grpcEchoCommand, env: { REVISION: 'blue' } }],
    });
    client = xdsEchoClient('web.acme.test', stack.grpcPort, 'prometheus-test-client');
    await eventually(async () => (await client!.say().catch(() => false)) !== false, 30_000, 200);
    load = new LoadLoop(client, 2, 20);

    dir = await mkdtemp(join(tmpdir(), 'prometheus-'));
    const port = await freePort();
    const target = new URL(stack.adminUrl).host;
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: stats-sink\n    static_configs: [{ targets: ['${target}'] }]\n`,
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    prometheusUrl = `http://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await load?.stop();
    client?.close();
    await stack?.stop();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const query = async (expr: string) => {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };

  it('scrapes the admin port, and every dashboard query is valid PromQL', async () => {
    await eventually(async () => ((await query('up{job="stats-sink"}').catch(() => undefined))?.data?.result.length ?? 0) > 0, 30_000, 500);
    expect((await query('up{job="stats-sink"} == 1')).data?.result).toHaveLength(1);
    for (const file of ['stats-sink.json', 'tenant-traffic.json']) {
      for (const { panel, expr } of await dashboardQueries(file)) {
        const answer = await query(expr);
        expect(answer.status, `${file} "${panel}": ${expr}: ${answer.error ?? ''}`).toBe('success');
      }
    }
  }, 60_000);

  it.each([
    ['tenant-traffic.json', ['Requests/s', 'Concurrency', 'Reporting nodes', 'Requests/s by revision', 'Busiest tenants']],
    ['stats-sink.json', ['Streams open', 'Reporting nodes', 'Messages/s', 'Load samples published/s', 'Memory (RSS)', 'CPU']],
  ])(
    '%s: the traffic panels return data',
    async (file, panels) => {
      const queries = (await dashboardQueries(file)).filter((q) => panels.includes(q.panel));
      expect(new Set(queries.map((q) => q.panel))).toEqual(new Set(panels));
      for (const { panel, expr } of queries) {
        await eventually(async () => ((await query(expr)).data?.result.length ?? 0) > 0, 30_000, 500).catch(() => {
          throw new Error(`${file} "${panel}" returned no data: ${expr}`);
        });
      }
    },
    90_000,
  );
});
