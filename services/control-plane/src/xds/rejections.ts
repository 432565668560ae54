import type { EncodedResource, HeldResource } from './encoding.js';
import type { Pending } from './type-state.js';

/**
 * What to do about resources a client rejected. Only SotW CDS/LDS need this: their responses
 * must name every resource, so a rejected one would otherwise be sent again with every
 * unrelated change.
 */

/** A resource version the client rejected, and what it keeps instead (null: nothing). */
export interface RejectedResource {
  version: string;
  keeps: HeldResource | null;
}

/** What a NACK can be matched against: the response's resources in order, and what changed in it. */
export interface SentForBlame {
  /** SotW CDS/LDS: the resources in the order sent. */
  sent?: readonly HeldResource[];
  /** What the response changed for this client (upserts, and what each replaced). */
  pending?: Pending;
}

/**
 * Which changed resources a NACK rejected: those its error names (Envoy: "Error adding/updating
 * cluster(s) <name>: …") or points at by position (grpc-js-xds: "resource index <i>: …"), or
 * the only one that changed. When that is unclear, none: the response is not resent anyway.
 */
export function blame(inflight: SentForBlame, message: string): readonly { resource: EncodedResource; had: HeldResource | null }[] {
  const pending = inflight.pending;
  if (pending === undefined || pending.upserts.length === 0) return [];
  const changed = pending.upserts.map((resource, i) => ({ resource, had: pending.replaced[i] ?? null }));
  const named = new Set<string>();
  for (const match of message.matchAll(/resource index (\d+)/g)) {
    const sent = inflight.sent?.[Number(match[1])];
    if (sent !== undefined) named.add(sent.name);
  }
  const mentions = (name: string) => new RegExp(`(^|[^\\w.-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w.-])`).test(message);
  const blamed = changed.filter((c) => named.has(c.resource.name) || (message.includes(c.resource.name) && mentions(c.resource.name)));
  if (blamed.length > 0) return blamed;
  return changed.length === 1 ? changed : [];
}

/**
 * The set to send: rejected versions replaced by what the client kept (left out if it kept
 * nothing). Rejections the desired state has moved past, or whose resource is gone, are
 * forgotten (the map is updated).
 */
export function keepRejected(rejected: Map<string, RejectedResource>, resources: readonly EncodedResource[]): HeldResource[] {
  const out: HeldResource[] = [];
  const present = new Set<string>();
  for (const r of resources) {
    present.add(r.name);
    const entry = rejected.get(r.name);
    if (entry === undefined) out.push(r);
    else if (entry.version !== r.version) {
      rejected.delete(r.name);
      out.push(r);
    } else if (entry.keeps?.any !== undefined) out.push(entry.keeps);
  }
  for (const name of rejected.keys()) if (!present.has(name)) rejected.delete(name);
  return out;
}
