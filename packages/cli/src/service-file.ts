import { parse } from 'yaml';
import { usageError } from './errors.js';

export interface ServiceFile {
  name: string | undefined;
  tenant: string | undefined;
  spec: Record<string, unknown>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(doc: Record<string, unknown>, key: string, path: string): string | undefined {
  const value = doc[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw usageError(`${path}: "${key}" must be a string`);
  return value;
}

/**
 * Reads a service file (YAML or JSON, which is YAML too). Two shapes: the spec itself with an
 * optional top-level `name` (and `tenant`), or `{name, spec}` as `syctl service get -o json`
 * prints it, so a fetched service can be edited and applied again.
 */
export function parseServiceFile(text: string, path: string): ServiceFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw usageError(`${path}: not valid YAML or JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(doc)) throw usageError(`${path}: must hold one object (a service spec), not ${doc === null ? 'nothing' : typeof doc}`);
  const name = optionalString(doc, 'name', path);
  const tenant = optionalString(doc, 'tenant', path);
  if (doc.spec !== undefined) {
    if (!isObject(doc.spec)) throw usageError(`${path}: "spec" must be an object`);
    return { name, tenant, spec: doc.spec };
  }
  const spec = Object.fromEntries(Object.entries(doc).filter(([key]) => key !== 'name' && key !== 'tenant'));
  return { name, tenant, spec };
}

/** Parses `blue=90 green=10` into a traffic list. */
export function parseTrafficSplit(args: string[]): { revision: string; percent: number }[] {
  return args.map((arg) => {
    const match = /^([^=\s]+)=(\d{1,3})%?$/.exec(arg);
    if (match === null) throw usageError(`"${arg}" is not <revision>=<percent>, e.g. blue=90`);
    return { revision: match[1] as string, percent: Number(match[2]) };
  });
}
