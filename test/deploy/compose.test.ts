import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { BlockList, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { DCLinter } from 'dclint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busIdentities, passwordVariable, serviceSpec, tenantSpec, type BusIdentity } from '@switchyard/shared';
import {
  bindMounts,
  composeFile,
  healthcheckUrl,
  loadCompose,
  namedVolumes,
  natsPasswordEnv,
  serviceEnvironment,
  switchyardServices,
  type ComposeService,
} from './compose.js';
import {
  checkServiceEnv,
  commandWorks,
  exists,
  notYetWritten,
  peerFiles,
  readText,
  repoPath,
  requireCommand,
  services,
} from './support.js';
import { certPaths } from './tls.js';

const compose = loadCompose();
const ours = switchyardServices(compose);
const peerPaths = new Set<string>(Object.values(peerFiles));

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`${composeFile} has no service ${name}`);
  return found;
}

describe('the compose file (deploy/compose/docker-compose.yml)', () => {
  it('matches the Compose specification schema', () => {
    // dclint ships the compose-spec JSON schema (schemas/compose.schema.json) and keeps it current.
    const require = createRequire(import.meta.url);
    const schemaFile = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
    // The schema names its draft as https://json-schema.org/draft-07/schema, an alias Ajv does not
    // register; the schema itself is dclint's concern, so skip validating it.
    const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8')) as object);
    validate(compose);
    expect((validate.errors ?? []).map((e) => `${e.instancePath}: ${e.message}`)).toEqual([]);
  });

  it('passes every dclint rule (pinned tags, ports bound to an interface, no duplicates, key order)', () => {
    const linter = new DCLinter({ rules: {}, quiet: false, debug: false, exclude: [] });
    const results: { messages: { line: number; rule: string; message: string }[] }[] = linter.lintFiles([repoPath(composeFile)], false);
    expect(results[0]?.messages.map((m) => `${m.line}: ${m.rule}: ${m.message}`)).toEqual([]);
  });

  it('is accepted by `docker compose config`', () => {
    const [command, ...args] = composeCommand();
    const result = spawnSync(command as string, [...args, '-f', repoPath(composeFile), 'config', '--quiet'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...natsPasswordEnv },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('runs NATS, Envoy, the four services, Prometheus, Grafana and a demo app', () => {
    expect([...new Set(ours.map((s) => s.service))].sort()).toEqual(Object.keys(services).sort());
    expect(service('nats').image).toMatch(/^nats:\d+\.\d+\.\d+/);
    expect(service('envoy').image).toMatch(/^envoyproxy\/envoy:v\d+\.\d+\.\d+$/);
    expect(service('prometheus').image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(service('grafana').image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(service('demo-blue').command).toEqual(['demo']);
  });

  it('waits only on services that have a health check', () => {
    for (const [name, definition] of Object.entries(compose.services)) {
      const dependsOn = Array.isArray(definition.depends_on) ? {} : (definition.depends_on ?? {});
      for (const [target, { condition }] of Object.entries(dependsOn)) {
        if (condition === 'service_healthy') expect(service(target).healthcheck, `${name} waits for ${target}`).toBeDefined();
      }
    }
  });

  it('mounts files that exist, that make-certs.sh writes, or that other parts of the project are writing', (ctx) => {
    const mounts = Object.values(compose.services).flatMap(bindMounts);
    const missing = mounts.map((m) => m.source).filter((source) => !exists(source) && !certPaths().has(source));
    expect(missing.filter((source) => !peerPaths.has(source))).toEqual([]);
    for (const mount of mounts) expect(mount.readOnly, `${mount.source} is mounted read-only`).toBe(true);
    if (missing.length > 0) ctx.skip(missing.map(notYetWritten).join('; '));
  });

  it('starts Envoy with the bootstrap it mounts', () => {
    const envoy = service('envoy');
    const command = envoy.command ?? [];
    const configPath = command[command.indexOf('-c') + 1];
    expect(bindMounts(envoy).find((m) => m.source === peerFiles.envoyBootstrap)?.target).toBe(configPath);
  });
});

describe.each(ours.map((s) => [s.composeName, s] as const))('the %s container', (_, { service: name, definition }) => {
  const check = checkServiceEnv(name, serviceEnvironment(definition));

  it('sets only variables the service reads, and they parse with its loadConfig', () => {
    expect(check.problems).toEqual([]);
  });

  it('is healthy when /readyz on its admin port answers', () => {
    const url = healthcheckUrl(definition);
    expect(url?.pathname).toBe('/readyz');
    expect(Number(url?.port)).toBe(check.ports.admin);
  });

  it('starts after NATS is healthy and reaches it by name', () => {
    expect(definition.depends_on).toMatchObject({ nats: { condition: 'service_healthy' } });
    expect(serviceEnvironment(definition).NATS_URL).toBe('nats://nats:4222');
  });

  it('runs as a non-root user on a read-only filesystem without capabilities', () => {
    expect(definition.user).toBe('10001:10001');
    expect(definition.read_only).toBe(true);
    expect(definition.cap_drop).toEqual(['ALL']);
    expect(definition.security_opt).toContain('no-new-privileges:true');
  });
});

describe('NATS in the compose stack', () => {
  const nats = service('nats');
  const configMount = bindMounts(nats).find((m) => m.source === 'deploy/compose/nats.conf');

  it('starts with the mounted configuration', () => {
    expect(nats.command).toEqual(['--config', configMount?.target]);
  });

  it('keeps the JetStream store on a named volume and fsyncs every write', () => {
    const config = readText('deploy/compose/nats.conf');
    const storeDir = /store_dir:\s*(\S+)/.exec(config)?.[1] ?? '';
    expect(namedVolumes(nats).some((v) => storeDir.startsWith(`${v.target}/`))).toBe(true);
    expect(config).toMatch(/^\s*sync_interval:\s*always\s*$/m);
  });

  it('has a configuration nats-server accepts', (ctx) => {
    const version = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
    if (version.error !== undefined) ctx.skip('nats-server is not on PATH');
    const [major, minor] = (/v(\d+)\.(\d+)/.exec(version.stdout) ?? []).slice(1).map(Number);
    let config = readText('deploy/compose/nats.conf');
    // sync_interval arrived in nats-server 2.10; an older local server checks the rest.
    if ((major as number) * 100 + (minor as number) < 210) config = config.replace(/^\s*sync_interval:.*$/m, '');
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-nats-conf-'));
    try {
      writeFileSync(join(dir, 'nats.conf'), config);
      // Mounted beside it, as the compose file mounts it.
      writeFileSync(join(dir, 'authorization.conf'), readText('deploy/compose/nats-authorization.conf'));
      const result = spawnSync('nats-server', ['--config', join(dir, 'nats.conf'), '-t'], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, ...natsPasswordEnv },
      });
      expect(result.stderr + result.stdout).not.toMatch(/error|unknown field/i);
      expect(result.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('NATS identities in the compose stack', () => {
  const nats = service('nats');

  it('mounts the generated authorization block where nats.conf includes it', () => {
    const included = /^include\s+\.\/(\S+)$/m.exec(readText('deploy/compose/nats.conf'))?.[1];
    expect(bindMounts(nats).find((m) => m.source === 'deploy/compose/nats-authorization.conf')?.target).toBe(`/etc/nats/${included}`);
  });

  it('refuses to start without the passwords', () => {
    expect(() => loadCompose({})).toThrow(/make-nats-passwords\.sh/);
  });

  it("gives nats-server every identity's password and each service its own", () => {
    expect(Object.keys(serviceEnvironment(service('nats'))).sort()).toEqual(busIdentities.map(passwordVariable).sort());
    for (const { service: name, composeName } of ours) {
      const env = serviceEnvironment(service(composeName));
      expect(env.NATS_PASSWORD, composeName).toBe(natsPasswordEnv[passwordVariable(name as BusIdentity)]);
      expect(env.NATS_USER, `${composeName} connects as its own name`).toBeUndefined();
    }
  });

  it('make-nats-passwords.sh writes a password for every identity', () => {
    const script = readText('deploy/compose/make-nats-passwords.sh');
    const listed = /for identity in ([A-Z_ ]+); do/.exec(script)?.[1]?.split(' ') ?? [];
    expect(listed.map((id) => `NATS_PASSWORD_${id}`).sort()).toEqual(busIdentities.map(passwordVariable).sort());
  });
});

describe('the demo tenant', () => {
  interface Recorded {
    method: string;
    url: string;
    authorization: string | undefined;
    body: unknown;
  }
  const recorded: Recorded[] = [];
  let respond: (request: IncomingMessage) => number = () => 200;
  const api = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      recorded.push({
        method: request.method ?? '',
        url: request.url ?? '',
        authorization: request.headers.authorization,
        body: JSON.parse(text),
      });
      response.writeHead(respond(request), { 'content-type': 'application/json' }).end('{}');
    });
  });
  let apiUrl = '';

  beforeAll(async () => {
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => api.close(() => resolve())));

  /** Runs deploy/demo/setup.mjs with the demo-setup container's environment, against the local API. */
  function runSetup(): Promise<{ code: number | null; output: string }> {
    const env = { ...serviceEnvironment(service('demo-setup')), SWITCHYARD_API_URL: apiUrl, DEMO_SETUP_TIMEOUT_MS: '10000' };
    const child = spawn(process.execPath, [repoPath('deploy/demo/setup.mjs')], { env: { PATH: process.env.PATH, ...env } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
  }

  it('is registered through the management API with a tenant grant and a service spec the schemas accept', async () => {
    recorded.length = 0;
    respond = () => 200;
    const { code, output } = await runSetup();
    expect(code, output).toBe(0);
    const token = serviceEnvironment(service('control-plane')).SWITCHYARD_ADMIN_TOKEN;
    expect(recorded.map((r) => `${r.method} ${r.url}`)).toEqual(['PUT /v1/tenants/demo', 'PUT /v1/tenants/demo/services/hello']);
    for (const request of recorded) expect(request.authorization).toBe(`Bearer ${token}`);
    const grant = tenantSpec.parse(recorded[0]?.body);
    const spec = serviceSpec.parse(recorded[1]?.body);
    for (const domain of spec.domains)
      expect(grant.domains.some((granted) => domain === granted || domain.endsWith(`.${granted}`))).toBe(true);
  });

  it('routes to the demo containers, inside the networks the control plane allows', async () => {
    recorded.length = 0;
    respond = () => 200;
    expect((await runSetup()).code).toBe(0);
    const spec = serviceSpec.parse(recorded[1]?.body);
    const allowed = new BlockList();
    for (const cidr of serviceEnvironment(service('control-plane')).SWITCHYARD_ENDPOINT_CIDRS?.split(',') ?? []) {
      const [network, prefix] = cidr.split('/') as [string, string];
      allowed.addSubnet(network, Number(prefix), 'ipv4');
    }
    const demos = ['demo-blue', 'demo-green'].map((name) => {
      const definition = service(name);
      const networks = definition.networks as Record<string, { ipv4_address: string }>;
      return {
        revision: serviceEnvironment(definition).REVISION,
        address: networks.default?.ipv4_address,
        port: Number(serviceEnvironment(definition).PORT),
      };
    });
    const routed = spec.revisions.map((r) => ({ revision: r.name, address: r.endpoints?.[0]?.address, port: r.endpoints?.[0]?.port }));
    expect(routed).toEqual(demos);
    for (const demo of demos) expect(allowed.check(demo.address as string, 'ipv4'), demo.address).toBe(true);
  });

  it('setup retries while the API is unavailable and stops at the first rejection', async () => {
    recorded.length = 0;
    let calls = 0;
    respond = () => (++calls <= 2 ? 503 : 200);
    expect((await runSetup()).code).toBe(0);
    expect(recorded).toHaveLength(4);

    recorded.length = 0;
    respond = () => 400;
    const rejected = await runSetup();
    expect(rejected.code).toBe(1);
    expect(rejected.output).toContain('PUT /v1/tenants/demo: HTTP 400');
    expect(recorded).toHaveLength(1);
  });
});

/** Compose v2: the docker CLI's plugin, or the binary scripts/setup.sh builds when there is none. */
function composeCommand(): string[] {
  if (commandWorks('docker', ['compose', 'version'])) return ['docker', 'compose'];
  const built = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard', 'bin', 'docker-compose-v2.29.7');
  requireCommand(built, ['version'], 'scripts/setup.sh builds compose v2 there (Go module github.com/docker/compose/v2)');
  return [built];
}
