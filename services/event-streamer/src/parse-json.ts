/** Parses a bus or KV value as JSON and checks it against a schema; undefined when either fails. */
export function parseJson<T>(data: Uint8Array, check: (value: unknown) => { success: true; data: T } | { success: false }): T | undefined {
  try {
    const result = check(JSON.parse(new TextDecoder().decode(data)));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
