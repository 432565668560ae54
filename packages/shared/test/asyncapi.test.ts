import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { asyncApiDocument, asyncApiYaml } from '../src/asyncapi.js';
import { subjectKinds } from '../src/messages.js';

const docPath = fileURLToPath(new URL('../../../docs/asyncapi.yaml', import.meta.url));

describe('AsyncAPI document', () => {
  it('documents every subject kind with its payload schema', () => {
    const doc = asyncApiDocument('1') as {
      channels: Record<string, { address: string }>;
      components: { messages: Record<string, { payload: { required?: string[] } }> };
    };
    for (const kind of Object.keys(subjectKinds)) {
      expect(doc.channels[kind]?.address).toMatch(new RegExp(`^switchyard\\.${kind}\\.`));
      expect(doc.components.messages[`${kind}Message`]?.payload.required).toContain('schemaVersion');
    }
    expect(doc.channels.load?.address).toBe('switchyard.load.{tenant}.{service}.{revision}');
  });

  it('docs/asyncapi.yaml matches the schemas (UPDATE_GOLDEN=1 rewrites it)', () => {
    const generated = asyncApiYaml('1');
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(docPath, generated);
    const committed = readFileSync(docPath, 'utf8');
    expect(parse(committed)).toEqual(parse(generated));
  });
});
