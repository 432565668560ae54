import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, createLogger, createObservability, ensureStreams, type Logger, type NatsConnection } from '@switchyard/shared';
import { NatsServer, freePort } from '@switchyard/shared/testing';
import { createApiServer, type ApiServer, type XdsNodeStatus } from '@switchyard/control-plane/api';
import { ConfigStore } from '@switchyard/control-plane/store';
import { run } from '../src/main.js';
import type { CliIO } from '../src/cli.js';

const adminToken = 'cli-test-admin-token';
const syctlMain = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const nodes: XdsNodeStatus[] = [
  {
    id: 'edge-envoy-1',
    cluster: 'edge',
    userAgent: 'envoy',
    connectedAt: 1_700_000_000_000,
    resources: [
      {
        typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        status: 'ACKED',
        upToDate: true,
        mode: 'delta',
        ackedVersion: '12',
        lastNack: null,
      },
      {
        typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener',
        status: 'NACKED',
        upToDate: false,
        mode: 'delta',
        ackedVersion: '11',
        lastNack: { version: '12', error: 'duplicate listener name', at: 1_700_000_001_000 },
      },
    ],
  },
];

const serviceYaml = `# the issue's minimal body, as a file
name: echo
domains: [echo.acme.test]
protocol: grpc
revisions:
  - name: blue
    endpoints: [{ address: 127.0.0.1, port: 50051 }]
  - name: green
    endpoints: [{ address: 127.0.0.1, port: 50052 }]
traffic:
  - { revision: blue, percent: 80 }
  - { revision: green, percent: 20 }
`;

let server: NatsServer;
let nc: NatsConnection;
let store: ConfigStore;
let api: ApiServer;
let apiUrl: string;
let dir: string;
const logger: Logger = createLogger('cli-test', 'silent');

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connectNats({ servers: server.url, name: 'cli-test', logger, observability: createObservability('cli-test') });
  await ensureStreams(nc);
  const observability = createObservability('cli-test');
  store = await ConfigStore.open({ nc, logger, registry: observability.registry });
  api = await createApiServer({
    store,
    config: { API_PORT: 0, SWITCHYARD_ADMIN_TOKEN: adminToken, SWITCHYARD_ENDPOINT_CIDRS: '127.0.0.0/8' },
    logger,
    registry: observability.registry,
    nodes: () => nodes,
    // The deployment controller's edge: a manual rollback's step is written as the controller writes it.
    deployments: {
      started: async () => undefined,
      apply: async (stored, step) => {
        await store.putDeployment(step.deployment, { ifRevision: stored.revision });
      },
    },
  });
  apiUrl = (await api.listen({ port: 0, host: '127.0.0.1' })).url;
  dir = await mkdtemp(join(tmpdir(), 'syctl-test-'));
});

afterAll(async () => {
  await api?.close();
  await store?.close();
  await nc?.close();
  await server?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs syctl in-process with its own stdout/stderr and environment. */
async function syctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: { SWITCHYARD_API: apiUrl, ...env },
    readFile: async (path) => (await import('node:fs/promises')).readFile(path, 'utf8'),
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

const asAdmin = { SWITCHYARD_TOKEN: adminToken };
let tenantToken: string;
const asTenant = () => ({ SWITCHYARD_TOKEN: tenantToken });

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('syctl against a real API server', () => {
  it('creates a tenant and refuses to create it twice, with a hint', async () => {
    const created = await syctl(['tenant', 'create', 'acme', '--domain', 'acme.test', '--domain', 'acme.example'], asAdmin);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toBe('tenant "acme" created; granted: acme.test, acme.example\n');

    const again = await syctl(['tenant', 'create', 'acme', '--domain', 'acme.test'], asAdmin);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('412 precondition_failed');
    expect(again.stderr).toContain('header.if-none-match:');
    expect(again.stderr).toContain('hint: to change its grant: syctl tenant update acme');
  });

  it('updates a grant and lists tenants as a table and as JSON', async () => {
    expect((await syctl(['tenant', 'update', 'acme', '--domain', 'acme.test'], asAdmin)).code).toBe(0);
    const list = await syctl(['tenant', 'list'], asAdmin);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^NAME\s+DOMAINS\s+SERVICES\s+REVISION$/);
    expect(list.stdout).toMatch(/^acme\s+acme\.test\s+0\s+\d+$/m);
    const json = await syctl(['tenant', 'list', '-o', 'json'], asAdmin);
    expect(JSON.parse(json.stdout).tenants).toEqual([expect.objectContaining({ name: 'acme', domains: ['acme.test'] })]);
  });

  it('issues a tenant token, printing only the token on stdout', async () => {
    const issued = await syctl(['token', 'create', 'acme'], asAdmin);
    expect(issued.code).toBe(0);
    expect(issued.stdout).toMatch(/^syt_[A-Za-z0-9_-]+\n$/);
    expect(issued.stderr).toContain('shown only now');
    tenantToken = issued.stdout.trim();
  });

  it('applies a service file with a tenant token (tenant implied); the same file again changes nothing', async () => {
    const path = await file('service.yaml', serviceYaml);
    const created = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toMatch(/^service "echo" created in tenant "acme" \(revision \d+\)\n$/);
    const revision = /revision (\d+)/.exec(created.stdout)?.[1];
    const again = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(again.stdout).toBe(`service "echo" unchanged in tenant "acme" (revision ${revision})\n`);
    const changed = await syctl(['service', 'apply', '-f', await file('changed.yaml', serviceYaml.replace('50052', '50053'))], asTenant());
    expect(changed.stdout).toMatch(/^service "echo" configured in tenant "acme"/);
    expect((await syctl(['service', 'apply', '-f', path], asTenant())).stdout).toMatch(/configured/);
  });

  it('shows a service as a table and as JSON, and the JSON applies back as is', async () => {
    const shown = await syctl(['service', 'get', 'echo'], asTenant());
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^SERVICE\s+acme\/echo$/m);
    expect(shown.stdout).toMatch(/^PROTOCOL\s+grpc$/m);
    expect(shown.stdout).toMatch(/^XDS\s+no xDS engine reports to this API$/m);
    expect(shown.stdout).toMatch(/^blue\s+80%\s+static\s+127\.0\.0\.1:50051 static\/unknown$/m);
    expect(shown.stdout).toMatch(/^green\s+20%\s+static\s+127\.0\.0\.1:50052 static\/unknown$/m);

    const json = await syctl(['service', 'get', 'echo', '-o', 'json'], asTenant());
    const view = JSON.parse(json.stdout);
    expect(view).toMatchObject({ tenant: 'acme', name: 'echo', spec: { protocol: 'grpc' }, status: { xds: null } });
    const path = await file('echo.json', json.stdout);
    const reapplied = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(reapplied.stdout).toMatch(/unchanged/);
  });

  it('applies under a name given on the command line, and lists services', async () => {
    const path = await file(
      'other.yaml',
      'domains: [other.acme.test]\nrevisions: [{name: v1, endpoints: [{address: 127.0.0.2, port: 8080}]}]\n',
    );
    expect((await syctl(['service', 'apply', '-f', path, '--name', 'other'], asTenant())).code).toBe(0);
    const list = await syctl(['service', 'list'], asTenant());
    expect(list.stdout).toMatch(/^NAME\s+DOMAINS\s+PROTOCOL\s+TRAFFIC\s+REVISION$/m);
    expect(list.stdout).toMatch(/^echo\s+echo\.acme\.test\s+grpc\s+blue=80 green=20\s+\d+$/m);
    expect(list.stdout).toMatch(/^other\s+other\.acme\.test\s+http\s+v1=100\s+\d+$/m);
  });

  it('sets traffic', async () => {
    const set = await syctl(['traffic', 'set', 'echo', 'blue=90', 'green=10'], asTenant());
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^blue\s+90%$/m);
    expect(set.stdout).toMatch(/^green\s+10%$/m);
    const json = JSON.parse((await syctl(['service', 'get', 'echo', '-o', 'json'], asTenant())).stdout);
    expect(json.spec.traffic).toEqual([
      { revision: 'blue', percent: 90 },
      { revision: 'green', percent: 10 },
    ]);
  });

  it('rollback of static revisions says which traffic set to run instead', async () => {
    const refused = await syctl(['rollback', 'echo'], asTenant());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('has never been deployed');
    expect(refused.stderr).toContain(
      'hint: blue, green have static endpoints, which no deployment runs; shift traffic instead: syctl traffic set echo green=100',
    );
  });

  it('a requested rollback that succeeds exits 0 without error:', async () => {
    await store.putDeployment(
      {
        schemaVersion: 1,
        id: 'canary-1',
        tenant: 'acme',
        service: 'echo',
        revision: 'green',
        previousRevision: 'blue',
        previousTraffic: [{ revision: 'blue', percent: 100 }],
        strategy: 'canary',
        steps: [10, 100],
        bakeMs: 60_000,
        maxErrorRatio: 0.05,
        phase: 'baking',
        stepIndex: 0,
        startedAt: 1,
        phaseSince: 1,
        message: '10% of traffic on green',
      },
      { ifAbsent: true },
    );
    const rolledBack = await syctl(['rollback', 'echo', '--reason', 'looks wrong'], asTenant());
    expect(rolledBack).toMatchObject({ code: 0, stderr: '' });
    expect(rolledBack.stdout).toMatch(/rolled_back .* looks wrong/);
    // The split is what it was before the deployment; put back the one the next tests expect.
    expect((await syctl(['traffic', 'set', 'echo', 'blue=90', 'green=10'], asTenant())).code).toBe(0);
  });

  it('lists xDS nodes for the admin', async () => {
    const shown = await syctl(['nodes'], asAdmin);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^NODE\s+CLUSTER\s+AGENT\s+TYPE\s+ACKED\s+LAST NACK$/m);
    expect(shown.stdout).toMatch(/^edge-envoy-1\s+edge\s+envoy\s+Cluster\s+12\s+-$/m);
    expect(shown.stdout).toMatch(/^edge-envoy-1\s+edge\s+envoy\s+Listener\s+11\s+12: duplicate listener name$/m);
    expect(JSON.parse((await syctl(['nodes', '-o', 'json'], asAdmin)).stdout)).toEqual({ nodes });
  });

  it('deletes a service', async () => {
    expect((await syctl(['service', 'delete', 'other'], asTenant())).stdout).toBe('service "other" deleted from tenant "acme"\n');
  });
});

describe('syctl as a real process whose stdout is a pipe', () => {
  it('writes all of a JSON answer over 1 MB before exiting', async () => {
    if (!existsSync(syctlMain)) throw new Error(`${syctlMain} is not built; run pnpm build`);
    // 100 routes × 3 header matchers × 3,300 bytes: a service whose JSON is over 1 MB.
    const routes = Array.from({ length: 100 }, (_, i) => ({
      match: { prefix: `/r${i}`, headers: Array.from({ length: 3 }, (_, j) => ({ name: `x-h${j}`, exact: 'v'.repeat(3300) })) },
    }));
    const spec = {
      name: 'huge',
      domains: ['huge.acme.test'],
      routes,
      revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: 9 }] }],
    };
    expect((await syctl(['service', 'apply', '-f', await file('huge.json', JSON.stringify(spec))], asTenant())).code).toBe(0);

    const child = spawn(process.execPath, [syctlMain, 'service', 'get', 'huge', '-o', 'json'], {
      env: { ...process.env, SWITCHYARD_API: apiUrl, ...asTenant() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const output = Buffer.concat(chunks).toString('utf8');
    expect(code).toBe(0);
    expect(output.length).toBeGreaterThan(1_000_000);
    expect(JSON.parse(output)).toMatchObject({ name: 'huge', spec: { routes: expect.arrayContaining([]) } });
    expect((await syctl(['service', 'delete', 'huge'], asTenant())).code).toBe(0);
  });
});

describe('syctl exit codes and error messages', () => {
  it.each([
    {
      label: 'an invalid traffic split (400)',
      args: ['traffic', 'set', 'echo', 'blue=50', 'green=10'],
      stderr: ['400 bad_request', 'traffic: percentages must sum to 100, got 60'],
    },
    {
      label: 'a service that does not exist (404)',
      args: ['service', 'get', 'nope'],
      stderr: ['404 not_found', 'path.service: no service "nope"'],
    },
    {
      label: 'an admin route with a tenant token (403)',
      args: ['tenant', 'list'],
      stderr: ['403 forbidden', 'this route needs the admin token'],
    },
    {
      label: "another tenant's services (404)",
      args: ['service', 'list', '--tenant', 'globex'],
      stderr: ['path.tenant: no tenant "globex"'],
    },
  ])('exit 1 for $label, with the field messages', async ({ args, stderr }) => {
    const result = await syctl(args, asTenant());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    for (const text of stderr) expect(result.stderr).toContain(text);
  });

  it('exit 1 for a spec the API refuses, naming each field', async () => {
    const path = await file(
      'bad.yaml',
      'name: bad\ndomains: [bad.globex.test]\nrevisions: [{name: v1, endpoints: [{address: 10.1.1.1, port: 80}]}]\n',
    );
    const result = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('403 forbidden');
    expect(result.stderr).toContain('domains[0]: "bad.globex.test" is not within the domains granted to tenant "acme"');
    expect(result.stderr).toContain('revisions[0].endpoints[0].address: 10.1.1.1 is outside the networks');
  });

  it('prints the API error body as JSON with -o json', async () => {
    const result = await syctl(['service', 'get', 'nope', '-o', 'json'], asTenant());
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toMatchObject({ status: 404, code: 'not_found', issues: [{ field: 'path.service' }] });
  });

  it.each([
    { label: 'an unknown command', args: ['frobnicate'], stderr: /unknown command 'frobnicate'/ },
    { label: 'a missing --file', args: ['service', 'apply'], stderr: /required option '-f, --file <path>'/ },
    { label: 'a missing --domain', args: ['tenant', 'create', 'x'], stderr: /required option '--domain <domain>'/ },
    { label: 'an unknown output format', args: ['-o', 'yaml', 'service', 'list'], stderr: /Allowed choices are table, json/ },
    {
      label: 'a malformed split',
      args: ['traffic', 'set', 'echo', 'blue:90'],
      stderr: /"blue:90" is not <revision>=<percent>, e.g. blue=90/,
    },
    { label: 'no subcommand', args: [], stderr: /Usage: syctl/ },
    {
      label: 'a file that does not exist',
      args: ['service', 'apply', '-f', '/nonexistent/service.yaml'],
      stderr: /cannot read \/nonexistent\/service.yaml/,
    },
  ])('exit 2 for $label', async ({ args, stderr }) => {
    const result = await syctl(args, asTenant());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(stderr);
  });

  it('exit 2 for a file whose tenant: disagrees with the token or --tenant, saying exactly that', async () => {
    const path = await file('globex.yaml', `tenant: globex\n${serviceYaml}`);
    const byToken = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(byToken.code).toBe(2);
    expect(byToken.stderr).toBe(
      `error: ${path} says tenant: "globex", but the token belongs to tenant "acme"; use a token of "globex" or change the file's tenant\n`,
    );
    const byOption = await syctl(['service', 'apply', '-f', path, '--tenant', 'acme'], asAdmin);
    expect(byOption.code).toBe(2);
    expect(byOption.stderr).toContain(`${path} says tenant: "globex", but --tenant / SWITCHYARD_TENANT says "acme"`);
    const agreeing = await file('acme.yaml', `tenant: acme\n${serviceYaml}`);
    expect((await syctl(['service', 'apply', '-f', agreeing], asTenant())).code).toBe(0);
  });

  it('exit 2 for a file without a name, naming both ways to give one', async () => {
    const path = await file('nameless.yaml', 'domains: [x.acme.test]\nrevisions: [{name: v1, image: x}]\n');
    const result = await syctl(['service', 'apply', '-f', path], asTenant());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: no service name: add "name: <service>" to ${path} or pass --name`);
  });

  it('exit 2 without a token, and without a tenant for the admin token', async () => {
    const noToken = await syctl(['service', 'list']);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('no token: pass --token or set SWITCHYARD_TOKEN');
    const noTenant = await syctl(['service', 'list'], asAdmin);
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain('no tenant: pass --tenant or set SWITCHYARD_TENANT');
    const withTenant = await syctl(['service', 'list', '--tenant', 'acme'], asAdmin);
    expect(withTenant.code).toBe(0);
  });

  it('exit 2 for an --api that is not a URL', async () => {
    const result = await syctl(['--api', 'localhost:8080', 'nodes'], asAdmin);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('must be an http:// or https:// URL');
  });

  it('exit 3 when nothing listens at --api', async () => {
    const port = await freePort();
    const result = await syctl(['nodes', '--api', `http://127.0.0.1:${port}`], asAdmin);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`cannot reach the Switchyard API at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(result.stderr).toContain('SWITCHYARD_API');
  });

  it('exit 0 for --help and --version', async () => {
    const help = await syctl(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(
      'Exit codes: 0 ok, 1 the API answered with an error, 2 usage or input file error, 3 the API cannot be reached,\n4 a followed deployment was rolled back or failed.',
    );
    for (const command of ['tenant', 'token', 'service', 'traffic', 'nodes']) expect(help.stdout).toContain(command);
    expect((await syctl(['--version'])).code).toBe(0);
  });
});
