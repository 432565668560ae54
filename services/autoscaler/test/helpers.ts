import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { scalingSpec, type Logger, type ServiceRecord, type ServiceSpecInput, serviceSpec } from '@switchyard/shared';

/** The test instance: a tiny Node HTTP server (see fixtures/instance-server.mjs). */
export const instanceServer = fileURLToPath(new URL('./fixtures/instance-server.mjs', import.meta.url));

/** A hostile test instance that tries to reach what a tenant must not (see fixtures/tenant-probe.mjs). */
export const tenantProbe = fileURLToPath(new URL('./fixtures/tenant-probe.mjs', import.meta.url));

/** Polls `condition` until it returns a truthy value or the deadline passes. */
export async function until<T>(
  condition: () => T | Promise<T>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Exclude<T, false | 0 | '' | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** GET http://127.0.0.1:port/path → status and body, or undefined when nothing answers. */
export function httpGet(port: number, path = '/'): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** The pid of the test instance answering on `port` (its /env), or undefined. */
export async function instancePid(port: number): Promise<number | undefined> {
  const answer = await httpGet(port, '/env');
  return answer === undefined ? undefined : (JSON.parse(answer.body) as { pid: number }).pid;
}

/**
 * Whether a process is running (neither gone nor a zombie). Checking the process rather than
 * its port: another test may already have been given the port again.
 */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A pino logger whose JSON lines are kept for assertions. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export const defaultScaling = scalingSpec.parse({});

/** A stored service record with every default filled in. */
export function serviceRecordFor(tenant: string, name: string, spec: ServiceSpecInput): ServiceRecord {
  return { schemaVersion: 1, tenant, name, spec: serviceSpec.parse(spec), updatedAt: Date.now() };
}
