import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, minimalGrpcService, startHarness, type Harness } from './harness.js';

/** schemathesis from the project-local venv scripts/setup.sh makes. */
const st = fileURLToPath(new URL('../../../../.switchyard/tools/schemathesis/bin/st', import.meta.url));

/** What schemathesis checks: no 5xx, and every answer (status, headers, content type, body) as /openapi.json documents it. */
const checks = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'unsupported_method',
  'allow_header_conformance',
];

/** Test cases per operation: with the stateful phase, a few hundred requests over the API's 15 operations. */
const maxExamples = 20;

/**
 * An outside fuzzer against the management API over a real port: schemathesis reads
 * /openapi.json, generates valid and invalid requests (and stateful sequences through the
 * document's links), and checks every answer against the document.
 */
describe('the management API under schemathesis', () => {
  let h: Harness;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness({
      deployments: {
        started: async () => undefined,
        apply: async (stored, step) => {
          await h.store.putDeployment(step.deployment, { ifRevision: stored.revision });
        },
      },
    });
    url = (await h.api.listen({ port: 0, host: '127.0.0.1' })).url;
    // Something to find: a tenant with a service, so generated names sometimes hit real records.
    await h.call('PUT', '/v1/tenants/acme', { token: adminToken, body: { domains: ['acme.test'] } });
    await h.call('PUT', '/v1/tenants/acme/services/echo', { token: adminToken, body: minimalGrpcService });
    dir = await mkdtemp(join(tmpdir(), 'schemathesis-'));
  });
  afterAll(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds no 500 and no answer the document does not describe', async () => {
    if (!existsSync(st)) throw new Error(`${st} is missing; scripts/setup.sh installs schemathesis there`);
    const args = [
      'run',
      `${url}/openapi.json`,
      '--checks',
      checks.join(','),
      '--phases',
      'examples,fuzzing,stateful',
      '--max-examples',
      String(maxExamples),
      '--seed',
      '16',
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--request-timeout',
      '10',
      '--header',
      `Authorization: Bearer ${adminToken}`,
      '--no-color',
    ];
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(st, args, { cwd: dir, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, output: stdout + stderr }),
      );
    });
    const generated = Number(/(\d+) generated/.exec(output)?.[1] ?? 0);
    console.log(`schemathesis: ${generated} test cases`);
    expect(code, output).toBe(0);
    expect(generated).toBeGreaterThan(100);
  }, 300_000);
});
