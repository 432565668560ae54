import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, newBusPasswords, startHost } from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { repoPath } from './deploy/support.js';
import { adminToken, controlPlane } from './support/stack.js';

/**
 * Issue 11, point 2: a standalone service's Envoy-facing gRPC port serves mutual TLS, or
 * plaintext only when the operator says XDS_INSECURE=true, and then it warns.
 */

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `node services/<service>/dist/src/main.js` with only `env` (and PATH); `until` decides
 * when to stop it (SIGTERM: it exits 0, or by the signal when it came before the handler was set).
 */
function runService(service: string, env: Record<string, string>, until?: (stdout: string) => boolean): Promise<Run> {
  const child = spawn(process.execPath, [repoPath(`services/${service}/dist/src/main.js`)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (until?.(stdout) === true) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

describe('a standalone service’s gRPC port', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(() => nats?.stop());

  it.each(['control-plane', 'stats-sink', 'event-streamer'])(
    '%s refuses to start without XDS_TLS_CERT, XDS_TLS_KEY and XDS_TLS_CLIENT_CA (exit 2)',
    async (service) => {
      const run = await runService(service, { NATS_URL: nats.url });
      expect(run.code).toBe(2);
      for (const name of ['XDS_TLS_CERT', 'XDS_TLS_KEY', 'XDS_TLS_CLIENT_CA']) expect(run.stderr).toContain(`${name}: required`);
    },
  );

  it('the event-streamer’s tailer, which serves no gRPC, needs no certificate', async () => {
    const run = await runService(
      'event-streamer',
      { NATS_URL: nats.url, EVENT_STREAMER_MODE: 'tailer', EVENT_STREAMER_ADMIN_PORT: String(await freePort()) },
      (out) => out.includes('admin server listening'),
    );
    expect(run.stderr).toBe('');
    expect(run.code === 0 || run.signal === 'SIGTERM').toBe(true);
  });

  it('starts without TLS when XDS_INSECURE=true, on every interface, and warns', async () => {
    const run = await runService(
      'stats-sink',
      {
        NATS_URL: nats.url,
        XDS_INSECURE: 'true',
        STATS_SINK_GRPC_PORT: String(await freePort()),
        STATS_SINK_ADMIN_PORT: String(await freePort()),
      },
      (out) => out.includes('admin server listening'),
    );
    const lines = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; host?: string; tls?: string });
    expect(lines.find((l) => l.msg === 'gRPC server listening')).toMatchObject({ host: '0.0.0.0', tls: 'plaintext' });
    expect(lines.find((l) => l.level === 40 && l.msg.includes('without TLS'))).toBeDefined();
    expect(run.stderr).toBe('');
  });
});

/** True when something accepts a TCP connection at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the all-in-one host', () => {
  it('binds its gRPC, admin and API ports to 127.0.0.1 by default', async (ctx) => {
    const nats = await NatsServer.start();
    const apiPort = await freePort();
    const host = await startHost({
      name: 'all-in-one',
      services: [controlPlane({ NATS_URL: nats.url, API_PORT: String(apiPort), SWITCHYARD_ADMIN_TOKEN: adminToken, LOG_LEVEL: 'silent' })],
      natsUrl: nats.url,
      grpcPort: 0,
      adminPort: await freePort(),
      logLevel: 'silent',
      otlpEndpoint: undefined,
    });
    try {
      expect(host.bindHost).toBe('127.0.0.1');
      const adminPort = (host.admin.server.address() as { port: number }).port;
      const ports = [host.grpcPort, adminPort, apiPort];
      for (const port of ports) expect(await accepts('127.0.0.1', port), `127.0.0.1:${port}`).toBe(true);
      const external = Object.values(networkInterfaces())
        .flat()
        .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
      if (external === undefined) return ctx.skip('this machine has no non-loopback IPv4 address to try');
      for (const port of ports) expect(await accepts(external, port), `${external}:${port}`).toBe(false);
    } finally {
      await host.stop();
      await nats.stop();
    }
  });
});

describe('a standalone service’s NATS identity', () => {
  let nats: NatsServer;
  let dir: string;
  beforeAll(async () => {
    nats = await NatsServer.start({ passwords: newBusPasswords() });
    dir = await mkdtemp(join(tmpdir(), 'switchyard-nats-password-'));
  });
  afterAll(async () => {
    await nats?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const insecureStatsSink = async () => ({
    NATS_URL: nats.url,
    XDS_INSECURE: 'true',
    STATS_SINK_GRPC_PORT: String(await freePort()),
    STATS_SINK_ADMIN_PORT: String(await freePort()),
  });

  it('connects as the user named after the service with the password from NATS_PASSWORD_FILE', async () => {
    const file = join(dir, 'stats-sink');
    await writeFile(file, `${nats.credentials('stats-sink').password}\n`, { mode: 0o600 });
    const run = await runService('stats-sink', { ...(await insecureStatsSink()), NATS_PASSWORD_FILE: file }, (out) =>
      out.includes('admin server listening'),
    );
    expect(run.stdout).not.toMatch(/permission denied|without credentials/);
    expect(run.code === 0 || run.signal === 'SIGTERM').toBe(true);
  });

  it('is refused by a server that enforces permissions when it has no password, or another service’s', async () => {
    const anonymous = await runService('stats-sink', await insecureStatsSink());
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stdout + anonymous.stderr).toMatch(/authorization/i);
    const borrowed = await runService('stats-sink', {
      ...(await insecureStatsSink()),
      NATS_PASSWORD: nats.credentials('autoscaler').password,
    });
    expect(borrowed.code).not.toBe(0);
    expect(borrowed.stdout + borrowed.stderr).toMatch(/authorization/i);
  });
});
