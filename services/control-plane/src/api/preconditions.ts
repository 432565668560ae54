/**
 * Conditional requests (RFC 9110 §13) over the KV revision, which is every record's ETag
 * (`"42"`). Pure: parsing the headers and judging them against the current revision.
 */

/** An `If-Match` or `If-None-Match` value: `*`, or a list of entity tags. */
export interface TagList {
  any: boolean;
  /** Revisions named by strong tags (`"42"`, or a bare `42`). */
  strong: number[];
  /** Revisions named by weak tags (`W/"42"`): they match only under weak comparison (If-None-Match). */
  weak: number[];
}

export interface Preconditions {
  ifMatch?: TagList;
  ifNoneMatch?: TagList;
}

/** A precondition that does not hold: the header at fault and why (answered as 412). */
export interface PreconditionFailure {
  field: 'header.if-match' | 'header.if-none-match';
  message: string;
}

/** A header that is not `*` nor a list of entity tags. */
export class MalformedTagList extends Error {
  constructor(readonly header: 'if-match' | 'if-none-match') {
    super(`must be * or a list of ETags such as "42" (W/"42" is a weak tag)`);
    this.name = 'MalformedTagList';
  }
}

const entityTag = /\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/y;

/** Parses one header; throws {@link MalformedTagList} on anything else. */
export function parseTagList(header: 'if-match' | 'if-none-match', value: string): TagList {
  const list: TagList = { any: false, strong: [], weak: [] };
  if (value.trim() === '') throw new MalformedTagList(header);
  if (value.trim() === '*') return { ...list, any: true };
  // A bare revision is accepted as the strong tag it stands for (older clients send it).
  if (/^\s*\d+\s*$/.test(value)) return { ...list, strong: [Number(value)] };
  entityTag.lastIndex = 0;
  while (entityTag.lastIndex < value.length) {
    const match = entityTag.exec(value);
    if (match === null) throw new MalformedTagList(header);
    // Tags this server never issues (not a revision number) are well-formed but match nothing.
    if (/^\d+$/.test(match[2] ?? '')) (match[1] === undefined ? list.strong : list.weak).push(Number(match[2]));
  }
  return list;
}

export function parsePreconditions(headers: { 'if-match'?: string; 'if-none-match'?: string }): Preconditions {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  return {
    ...(ifMatch === undefined ? {} : { ifMatch: parseTagList('if-match', ifMatch) }),
    ...(ifNoneMatch === undefined ? {} : { ifNoneMatch: parseTagList('if-none-match', ifNoneMatch) }),
  };
}

const quoted = (tags: TagList) => (tags.any ? '*' : [...tags.strong.map((r) => `"${r}"`), ...tags.weak.map((r) => `W/"${r}"`)].join(', '));

/**
 * Judges the preconditions of a state-changing request against the record's current revision
 * (undefined: it does not exist), in the RFC's order: If-Match (strong comparison), then
 * If-None-Match (weak comparison). Returns undefined when the request may proceed.
 */
export function evaluatePreconditions(pre: Preconditions, current: number | undefined, what: string): PreconditionFailure | undefined {
  const { ifMatch, ifNoneMatch } = pre;
  if (ifMatch !== undefined) {
    if (current === undefined) {
      return {
        field: 'header.if-match',
        message: `is ${quoted(ifMatch)}, but ${what} does not exist; send no If-Match (or If-None-Match: *) to create it`,
      };
    }
    if (!ifMatch.any && !ifMatch.strong.includes(current)) {
      return {
        field: 'header.if-match',
        message: `is ${quoted(ifMatch) || 'no ETag of this server'}, but ${what} is at "${current}" now; read it again and retry`,
      };
    }
  }
  if (ifNoneMatch !== undefined && current !== undefined) {
    if (ifNoneMatch.any) {
      return {
        field: 'header.if-none-match',
        message: `is *, but ${what} exists (ETag "${current}"); send If-Match: "${current}" instead to replace it`,
      };
    }
    if (ifNoneMatch.strong.includes(current) || ifNoneMatch.weak.includes(current)) {
      return { field: 'header.if-none-match', message: `names "${current}", the current version of ${what}` };
    }
  }
  return undefined;
}
