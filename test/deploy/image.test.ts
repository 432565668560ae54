import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Ignore } from '@balena/dockerignore';
import { Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exists, readText, repoPath, services } from './support.js';

const dockerfileText = readText('deploy/Dockerfile');
const dockerfile = DockerfileParser.parse(dockerfileText);
const instructions = dockerfile.getInstructions();
const entrypoint = repoPath('deploy/entrypoint.sh');
// A CommonJS module whose typings declare an ES default export: loaded with require to get the factory.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => Ignore;

/** The instructions of the last stage: what the image runs. */
function runtimeStage(): Instruction[] {
  const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

function argumentsOf(instruction: Instruction): string[] {
  return instruction.getArguments().map((a) => a.getValue());
}

/** Every file under a directory of the repository, as repository paths (node_modules and dist left out). */
function filesUnder(dir: string): string[] {
  return readdirSync(repoPath(dir)).flatMap((name) => {
    if (name === 'node_modules' || name === 'dist') return [];
    const path = `${dir}/${name}`;
    return statSync(repoPath(path)).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('the image (deploy/Dockerfile)', () => {
  const ignore = dockerignore({ ignorecase: false }).add(readText('.dockerignore').split('\n'));

  it('passes dockerfile-utils validation', () => {
    expect(validate(dockerfileText).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('starts from Node 20 slim in every stage', () => {
    const nodeImage = dockerfile
      .getInitialARGs()
      .map((arg) => arg.getProperty())
      .find((p) => p?.getName() === 'NODE_IMAGE')
      ?.getValue();
    expect(nodeImage).toMatch(/^node:20-[a-z]+-slim$/);
    for (const from of dockerfile.getFROMs()) expect(['${NODE_IMAGE}', 'pnpm', 'build']).toContain(from.getImage());
  });

  it('runs as a numeric non-root user under tini, through the entrypoint', () => {
    const stage = runtimeStage();
    const user = stage.filter((i) => i.getKeyword() === 'USER').at(-1);
    const [uid, gid] = (argumentsOf(user as Instruction)[0] ?? '').split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    const entry = stage.find((i) => i.getKeyword() === 'ENTRYPOINT');
    expect(JSON.parse(entry?.getArgumentsContent() ?? 'null')).toEqual(['/usr/bin/tini', '--', '/app/deploy/entrypoint.sh']);
  });

  it('gets every file it names into the build context', () => {
    const named = new Set<string>();
    for (const instruction of instructions) {
      const keyword = instruction.getKeyword();
      if (instruction instanceof Copy && !instruction.getFlags().some((flag) => flag.getName() === 'from')) {
        for (const source of argumentsOf(instruction).slice(0, -1)) if (source !== '.') named.add(source.replace(/\/$/, ''));
      }
      if (keyword === 'RUN')
        for (const match of (instruction.getRawArgumentsContent() ?? '').matchAll(/(?<![\w/])deploy\/[\w./-]+/g)) named.add(match[0]);
    }
    expect(named.size).toBeGreaterThan(0);
    for (const path of named) {
      expect(exists(path), `${path} exists`).toBe(true);
      expect(ignore.ignores(path), `${path} is in the build context`).toBe(false);
    }
  });

  it('builds from sources and protos, never from local node_modules or dist', () => {
    const needed = [
      'package.json',
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      ...filesUnder('packages').filter((f) => /(package\.json|tsconfig\.json|\.ts|\.proto)$/.test(f)),
      ...filesUnder('services').filter((f) => /(package\.json|tsconfig\.json|\.ts)$/.test(f)),
    ];
    expect(needed.some((f) => f.endsWith('.proto'))).toBe(true);
    expect(needed.filter((f) => ignore.ignores(f))).toEqual([]);
    for (const built of ['node_modules/x', 'packages/shared/node_modules/x', 'packages/shared/dist/src/index.js']) {
      expect(ignore.ignores(built), built).toBe(true);
    }
  });
});

/**
 * Runs deploy/entrypoint.sh from the checkout (it resolves its files from its own location).
 * Asynchronously: the servers it probes live in this process.
 */
function runEntrypoint(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(entrypoint, args, { env: { PATH: process.env.PATH, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

describe('the entrypoint (deploy/entrypoint.sh)', () => {
  let server: Server;
  let base = '';

  beforeAll(async () => {
    server = createServer((request, response) => response.writeHead(request.url === '/readyz' ? 200 : 503).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('lists every command and fails on an unknown one', async () => {
    const help = await runEntrypoint(['help']);
    expect(help.status).toBe(0);
    for (const command of [...Object.keys(services), 'syctl', 'demo', 'demo-setup', 'probe'])
      expect(help.stdout).toContain(`  ${command} `);
    const unknown = await runEntrypoint(['router']);
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain('unknown command: router');
  });

  it('probes: 0 for a 2xx answer, 1 for an error status or no answer', async () => {
    expect((await runEntrypoint(['probe', `${base}/readyz`])).status).toBe(0);
    expect((await runEntrypoint(['probe', `${base}/healthz`])).status).toBe(1);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect((await runEntrypoint(['probe', `http://127.0.0.1:${port}/readyz`, '500'])).status).toBe(1);
  });

  it('runs the demo server, which names its revision and stops on SIGTERM', async () => {
    const child = spawn(entrypoint, ['demo'], { env: { PATH: process.env.PATH, PORT: '0', REVISION: 'green' } });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const line = /"port":(\d+)/.exec(chunk.toString());
        if (line) resolve(Number(line[1]));
      });
      child.once('exit', (code) => reject(new Error(`demo exited with ${code}`)));
    });
    const response = await fetch(`http://127.0.0.1:${port}/hello`);
    expect(response.headers.get('x-demo-revision')).toBe('green');
    expect(await response.json()).toMatchObject({ revision: 'green', method: 'GET', path: '/hello' });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it.for(Object.keys(services))('starts %s from its build output, which reads its configuration', async (service, ctx) => {
    const main = `services/${service}/dist/src/main.js`;
    if (!exists(main)) ctx.skip(`${main} is not built (pnpm build; the service's main.ts is written by its own issue)`);
    // A bad admin port makes main exit with status 2 before it connects to anything.
    const adminPort = Object.keys(services[service as keyof typeof services].schema.shape).find((k) => k.endsWith('_ADMIN_PORT'));
    const result = await runEntrypoint([service], { [adminPort as string]: 'not-a-port' });
    expect(result.status, result.stdout + result.stderr).toBe(2);
    expect(result.stdout + result.stderr).toContain('invalid configuration');
  });

  it('starts syctl from its build output', async (ctx) => {
    const main = 'packages/cli/dist/src/main.js';
    if (!exists(main)) ctx.skip(`${main} is not built (pnpm build; syctl is written by issue 3)`);
    const result = await runEntrypoint(['syctl', '--help']);
    expect(result.status, result.stderr).toBe(0);
  });
});
