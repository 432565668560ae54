import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { busServices, subjectKinds } from '../src/messages.js';
import { natsServerAuthorization, passwordsFromEnv, permissionTable } from '../src/bus-permissions.js';

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
});
