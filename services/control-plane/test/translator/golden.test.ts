import { existsSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { TypeUrl, checkMessage, packAny, type XdsTypeUrl } from '@switchyard/shared';
import { nodeGroups, type ResourceSet } from '../../src/resources.js';
import { translate } from '../../src/translator/index.js';
import { decodeAsGrpcClient } from './grpc-client.js';
import { loadCase } from './harness.js';

/**
 * Golden translation tests: testdata/in/<case>.yaml → testdata/out/<case>.<group>.yaml (every
 * resource by kind) and <case>.errors.yaml (when something was left out). Cases named
 * *-invalid must report errors; all others must not. UPDATE_GOLDEN=1 rewrites the outputs and
 * deletes orphans.
 */
const testdata = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const update = process.env.UPDATE_GOLDEN === '1';

const kinds: [string, XdsTypeUrl][] = [
  ['extensions', TypeUrl.ExtensionConfig],
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.RouteConfiguration],
  ['scopes', TypeUrl.ScopedRouteConfiguration],
  ['clusters', TypeUrl.Cluster],
  ['endpoints', TypeUrl.ClusterLoadAssignment],
  ['secrets', TypeUrl.Secret],
];

function render(value: unknown): string {
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
}

function renderSet(set: ResourceSet): string {
  return render(Object.fromEntries(kinds.map(([kind, url]) => [kind, [...(set.get(url)?.values() ?? [])]])));
}

const cases = readdirSync(join(testdata, 'in'))
  .filter((file) => file.endsWith('.yaml'))
  .map((file) => basename(file, '.yaml'))
  .sort();
/** Every output file the cases produce, known at collection time even when a filter skips tests. */
const expected = new Set<string>();

function golden(file: string, actual: string): void {
  const path = join(testdata, 'out', file);
  if (update) {
    writeFileSync(path, actual);
    return;
  }
  expect(existsSync(path), `${file} is missing; run with UPDATE_GOLDEN=1`).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

describe.each(cases)('golden case %s', (name) => {
  const { state, options } = loadCase(join(testdata, 'in', `${name}.yaml`));
  const result = translate(state, options);
  const hasErrorFile = result.errors.length > 0 || result.nextChangeAt !== undefined;
  for (const group of nodeGroups) expected.add(`${name}.${group}.yaml`);
  if (hasErrorFile) expected.add(`${name}.errors.yaml`);

  it.each(nodeGroups)('%s resources match the golden file', (group) => {
    golden(`${name}.${group}.yaml`, renderSet(result.snapshot[group]));
  });

  it(name.endsWith('-invalid') ? 'reports what it left out, as in the golden file' : 'leaves nothing out', () => {
    if (name.endsWith('-invalid')) expect(result.errors).not.toEqual([]);
    else expect(result.errors).toEqual([]);
    if (hasErrorFile) golden(`${name}.errors.yaml`, render({ errors: result.errors, nextChangeAt: result.nextChangeAt }));
  });

  it('emits only valid Envoy messages that encode', () => {
    for (const group of nodeGroups) {
      for (const [url, resources] of result.snapshot[group]) {
        for (const [resourceName, resource] of resources) {
          expect(checkMessage(url, resource), `${group} ${resourceName}`).toEqual([]);
          expect(() => packAny(url, resource)).not.toThrow();
        }
      }
    }
  });

  it('sends gRPC clients nothing grpc-js-xds would NACK', () => {
    for (const [url, resources] of result.snapshot.grpc) {
      for (const [resourceName, resource] of resources) {
        const decoded = decodeAsGrpcClient(url, resource);
        expect(decoded.error, `${resourceName}`).toBeUndefined();
        expect(decoded.name).toBe(resourceName);
      }
    }
  });
});

afterAll(() => {
  if (!update) return;
  for (const file of readdirSync(join(testdata, 'out'))) {
    if (!expected.has(file)) unlinkSync(join(testdata, 'out', file));
  }
});

it('has no orphaned golden files', () => {
  if (update) return;
  expect(readdirSync(join(testdata, 'out')).filter((file) => !expected.has(file))).toEqual([]);
});
