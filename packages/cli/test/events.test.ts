import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buckets,
  configKeys,
  ensureStreams,
  eventStreamerEnv,
  loadConfig,
  openBucket,
  publishDurable,
  startHost,
  type GrpcSecurity,
  type Host,
} from '@switchyard/shared';
import { NatsServer, freePort } from '@switchyard/shared/testing';
import { createEventStreamerService } from '@switchyard/event-streamer';
import { createProgram, reportError, type CliIO } from '../src/cli.js';
import { registerEvents } from '../src/commands/events.js';

const adminToken = 'events-admin';
const syctlMain = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const acmeToken = 'events-acme';

let nats: NatsServer;
let host: Host;
let address: string;

/** `syctl events …` in-process, against the event-streamer started below. */
async function syctl(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: { SWITCHYARD_EVENTS: address, ...env },
    readFile: async () => '',
  };
  const program = createProgram(io);
  registerEvents(program);
  let code = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    code = reportError(err, program, io);
  }
  return { code, stdout, stderr };
}

/** An event-streamer on free ports, its gRPC port plaintext or with the given security. */
async function startEventStreamer(grpcSecurity?: GrpcSecurity): Promise<Host> {
  const config = loadConfig(eventStreamerEnv, {
    NATS_URL: nats.url,
    LOG_LEVEL: 'silent',
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    EVENT_STREAMER_GRPC_PORT: '0',
    EVENT_STREAMER_ADMIN_PORT: String(await freePort()),
  });
  return startHost({
    name: 'event-streamer',
    services: [createEventStreamerService(config)],
    natsUrl: config.NATS_URL,
    grpcPort: config.EVENT_STREAMER_GRPC_PORT,
    adminPort: config.EVENT_STREAMER_ADMIN_PORT,
    logLevel: config.LOG_LEVEL,
    otlpEndpoint: undefined,
    grpcSecurity,
  });
}

beforeAll(async () => {
  nats = await NatsServer.start();
  host = await startEventStreamer();
  address = `127.0.0.1:${host.grpcPort}`;
  const kv = await openBucket(host.runtime.nc, buckets.config);
  const tokenHash = createHash('sha256').update(acmeToken).digest('hex');
  await kv.put(configKeys.token(tokenHash), JSON.stringify({ schemaVersion: 1, tenant: 'acme', createdAt: 1 }));
  const { js } = await ensureStreams(host.runtime.nc);
  const ts = Date.UTC(2024, 4, 1, 10, 0, 0);
  await publishDurable(js, 'status', {
    schemaVersion: 1,
    tenant: 'acme',
    service: 'api',
    event: 'applied',
    specRevision: 4,
    revisions: ['blue'],
    traffic: [{ revision: 'blue', percent: 100 }],
    ts,
  });
  await publishDurable(js, 'health', {
    schemaVersion: 1,
    tenant: 'acme',
    service: 'api',
    revision: 'blue',
    endpoint: { address: '10.0.0.5', port: 8080, id: 'i-3' },
    state: 'unhealthy',
    previous: 'healthy',
    reason: '2 of 3 checkers report unhealthy',
    votes: [],
    ts: ts + 1000,
  });
  await publishDurable(js, 'instance', {
    schemaVersion: 1,
    tenant: 'beta',
    service: 'db',
    revision: 'r1',
    instance: 'i-9',
    event: 'ready',
    detail: '',
    ts: ts + 2000,
  });
});

afterAll(async () => {
  await host?.stop();
  await nats?.dispose();
});

describe('syctl events against a running event-streamer', () => {
  it('prints the retained events as readable lines and exits', async () => {
    const result = await syctl(['events', '--token', adminToken]);
    expect(result).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        '2024-05-01T10:00:00.000Z  status    acme/api                  applied spec #4: revisions blue; traffic blue 100%',
        '2024-05-01T10:00:01.000Z  health    acme/api/blue             10.0.0.5:8080 (i-3) healthy -> unhealthy: 2 of 3 checkers report unhealthy',
        '2024-05-01T10:00:02.000Z  instance  beta/db/r1                i-9 ready',
        '',
      ].join('\n'),
    });
  });

  it('prints JSON lines with -o json and narrows by kind', async () => {
    const result = await syctl(['events', '-o', 'json', '--kind', 'health,instance'], { SWITCHYARD_TOKEN: adminToken });
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; payload: { state?: string } });
    expect(lines.map((l) => l.kind)).toEqual(['health', 'instance']);
    expect(lines[0]?.payload.state).toBe('unhealthy');
  });

  it('keeps a tenant token to its tenant', async () => {
    const own = await syctl(['events'], { SWITCHYARD_TOKEN: acmeToken });
    expect(own.code).toBe(0);
    expect(own.stdout).not.toContain('beta/');
    expect(own.stdout.trim().split('\n')).toHaveLength(2);
    const other = await syctl(['events', '--tenant', 'beta'], { SWITCHYARD_TOKEN: acmeToken });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('may only watch tenant "acme"');
  });

  it('exits 2 without a token, 1 with a bad one, 3 when the event-streamer cannot be reached', async () => {
    expect((await syctl(['events'])).code).toBe(2);
    const bad = await syctl(['events', '--token', 'nope']);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown or revoked token') });
    const nobody = `127.0.0.1:${await freePort()}`;
    const unreachable = await syctl(['events', '--token', adminToken, '--events', nobody]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain(`cannot reach the event-streamer's Watch API at ${nobody}`);
    expect(unreachable.stderr).toContain('--events <host:port> / SWITCHYARD_EVENTS');
  });
});

describe('syctl events as a real process in a pipeline', () => {
  it('exits quietly (0, nothing on stderr) when the reader goes away: `syctl events --follow | head -1`', async () => {
    if (!existsSync(syctlMain)) throw new Error(`${syctlMain} is not built; run pnpm build`);
    const pipeline = spawn('bash', ['-c', `node ${syctlMain} events --follow | head -1; echo "syctl exit \${PIPESTATUS[0]}" >&2`], {
      env: { ...process.env, SWITCHYARD_EVENTS: address, SWITCHYARD_TOKEN: adminToken },
    });
    let stdout = '';
    let stderr = '';
    pipeline.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    pipeline.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ended = new Promise<void>((resolve) => pipeline.on('close', () => resolve()));
    // head exits after the first line; syctl meets the closed pipe on its next write.
    const { js } = await ensureStreams(host.runtime.nc);
    let closed = false;
    void ended.then(() => (closed = true));
    for (let i = 0; !closed && i < 200; i++) {
      await publishDurable(js, 'instance', {
        schemaVersion: 1,
        tenant: 'beta',
        service: 'db',
        revision: 'r1',
        instance: `i-${i}`,
        event: 'ready',
        detail: '',
        ts: Date.now(),
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await ended;
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(stderr).toBe('syctl exit 0\n');
  });
});

describe('syctl events against an event-streamer serving mutual TLS', () => {
  const certs = mkdtempSync(join(tmpdir(), 'switchyard-cli-certs-'));
  const tools = {
    SWITCHYARD_TLS_CA: join(certs, 'ca.crt'),
    SWITCHYARD_TLS_CERT: join(certs, 'tools', 'tls.crt'),
    SWITCHYARD_TLS_KEY: join(certs, 'tools', 'tls.key'),
  };
  let tlsHost: Host;
  let tlsAddress: string;

  beforeAll(async () => {
    execFileSync(fileURLToPath(new URL('../../../deploy/tls/make-certs.sh', import.meta.url)), [certs], { stdio: 'ignore' });
    tlsHost = await startEventStreamer({
      mode: 'mtls',
      certFile: join(certs, 'event-streamer', 'tls.crt'),
      keyFile: join(certs, 'event-streamer', 'tls.key'),
      clientCaFile: join(certs, 'ca.crt'),
    });
    tlsAddress = `127.0.0.1:${tlsHost.grpcPort}`;
  });

  afterAll(async () => {
    await tlsHost?.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  it('reads events with the tools certificate from SWITCHYARD_TLS_*', async () => {
    const result = await syctl(['events', '--token', adminToken, '--kind', 'instance'], { SWITCHYARD_EVENTS: tlsAddress, ...tools });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('i-9 ready');
    expect(result.code).toBe(0);
  });

  it('is refused without a certificate, and says which variable is missing when only some are set', async () => {
    const refused = await syctl(['events', '--token', adminToken], { SWITCHYARD_EVENTS: tlsAddress });
    expect(refused.code).toBe(3);
    const partial = await syctl(['events', '--token', adminToken], {
      SWITCHYARD_EVENTS: tlsAddress,
      SWITCHYARD_TLS_CA: tools.SWITCHYARD_TLS_CA,
    });
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain('SWITCHYARD_TLS_CERT, SWITCHYARD_TLS_KEY must be set');
  });
});
