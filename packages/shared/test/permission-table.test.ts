import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { busServices, subjectKinds } from '../src/messages.js';
import { parseDocument } from 'yaml';
import { busIdentities, natsServerAuthorization, passwordVariable, passwordsFromEnv, permissionTable } from '../src/bus-permissions.js';

const repoFile = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const update = process.env.UPDATE_GOLDEN === '1';

const begin = '<!-- permission-table:begin (generated from packages/shared/src/bus-permissions.ts) -->';
const end = '<!-- permission-table:end -->';

/** The cells of a markdown table, whatever padding prettier gave it. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .filter((line) => !/^\|[\s|:-]+\|$/.test(line))
    .map((line) =>
      line
        .slice(1, -1)
        .split(' | ')
        .map((cell) => cell.trim()),
    );
}

describe('what the permission table generates', () => {
  it('docs/bus.md shows who may publish and subscribe what, as the table says (UPDATE_GOLDEN=1 rewrites it)', () => {
    const file = repoFile('docs/bus.md');
    let doc = readFileSync(file, 'utf8');
    const [before, rest] = doc.split(begin) as [string, string | undefined];
    expect(rest, `docs/bus.md has the marker ${begin}`).toBeDefined();
    const [committed, after] = rest!.split(end) as [string, string];
    if (update) {
      doc = `${before}${begin}\n\n${permissionTable()}\n\n${end}${after}`;
      writeFileSync(file, doc);
    }
    expect(cells(update ? permissionTable() : committed)).toEqual(cells(permissionTable()));
  });

  it("docs/bus.md's subject table names each kind's publishers as the contract does", () => {
    const doc = readFileSync(repoFile('docs/bus.md'), 'utf8');
    for (const [name, def] of Object.entries(subjectKinds)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${def.kind}\``));
      expect(row, `docs/bus.md has a row for ${name}`).toBeDefined();
      const publishedBy = cells(row!)[0]![2]!;
      for (const service of busServices)
        expect(publishedBy.includes(service), `${name} published by ${service}`).toBe(def.publishers.includes(service));
    }
  });

  it('deploy/compose/nats-authorization.conf is the generated authorization block (UPDATE_GOLDEN=1 rewrites it)', () => {
    const file = repoFile('deploy/compose/nats-authorization.conf');
    const generated = natsServerAuthorization(passwordsFromEnv);
    if (update) writeFileSync(file, generated);
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });

  it('the NATS Helm values include the same block, with every password from the Secret (UPDATE_GOLDEN=1 rewrites them)', () => {
    const file = repoFile('deploy/kubernetes/nats-values.yaml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    const env = Object.fromEntries(
      busIdentities.map((identity) => [
        passwordVariable(identity),
        { valueFrom: { secretKeyRef: { name: 'switchyard-nats-passwords', key: identity } } },
      ]),
    );
    const conf = natsServerAuthorization(passwordsFromEnv);
    if (update) {
      doc.setIn(['container', 'env'], env);
      doc.setIn(['configMap', 'merge', 'data'], { [helmAuthorizationFile]: conf });
      writeFileSync(file, doc.toString({ lineWidth: 0 }));
    }
    const values = doc.toJS() as {
      config: { merge: Record<string, string> };
      container: { env: unknown };
      configMap: { merge: { data: Record<string, string> } };
    };
    expect(values.config.merge['00$include']).toBe(helmAuthorizationFile);
    expect(values.configMap.merge.data[helmAuthorizationFile]).toBe(conf);
    expect(values.container.env).toEqual(env);
  });
});

/** The file the chart's config includes (relative to /etc/nats-config, where its ConfigMap is mounted). */
const helmAuthorizationFile = 'switchyard-authorization.conf';
