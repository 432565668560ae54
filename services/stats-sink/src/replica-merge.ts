import type { LoadPartial, LoadSample, NodeLoadShare } from '@switchyard/shared';

const keyOf = (p: Pick<LoadPartial, 'tenant' | 'service' | 'revision'>) => `${p.tenant}/${p.service}/${p.revision}`;

const fresh = (partial: LoadPartial, now: number) => partial.ts + partial.freshForMs >= now;

/**
 * Fleet-wide load from the partials of several stats-sink replicas, each of which hears from
 * some of the Envoys. Pure: partials go in, merged samples come out. Each node counts once,
 * by the replica that heard from it last (an Envoy that moved is still in its old replica's
 * partial until that replica notices it went stale); a partial stops counting once it is
 * older than its `freshForMs`, so a dead replica's share ages out. Of the replicas reporting a
 * revision, the one with the lowest id publishes its total: every replica merges the same
 * partials, so a brief overlap while that changes publishes the same figures twice.
 */
export class ReplicaMerge {
  private readonly partials = new Map<string, Map<string, LoadPartial>>();

  constructor(readonly replica: string) {}

  add(partial: LoadPartial): void {
    const key = keyOf(partial);
    let byReplica = this.partials.get(key);
    if (byReplica === undefined) this.partials.set(key, (byReplica = new Map()));
    const known = byReplica.get(partial.replica);
    if (known === undefined || known.ts <= partial.ts) byReplica.set(partial.replica, partial);
  }

  /** Whether this replica publishes the revision's total now: it reports the revision and has the lowest id of those that do. */
  publishes(revision: Pick<LoadPartial, 'tenant' | 'service' | 'revision'>, now: number): boolean {
    const byReplica = this.partials.get(keyOf(revision));
    const own = byReplica?.get(this.replica);
    if (own === undefined || !fresh(own, now)) return false;
    for (const partial of byReplica!.values()) if (partial.replica < this.replica && fresh(partial, now)) return false;
    return true;
  }

  /** The revision's load summed over fresh partials, each node once; undefined when no partial is fresh. */
  merged(revision: Pick<LoadPartial, 'tenant' | 'service' | 'revision'>, now: number): LoadSample | undefined {
    const byReplica = this.partials.get(keyOf(revision));
    if (byReplica === undefined) return undefined;
    const latest = new Map<string, NodeLoadShare>();
    let anyFresh = false;
    for (const [replica, partial] of byReplica) {
      if (!fresh(partial, now)) {
        byReplica.delete(replica);
        continue;
      }
      anyFresh = true;
      for (const share of partial.nodes) {
        const seen = latest.get(share.node);
        if (seen === undefined || seen.at < share.at) latest.set(share.node, share);
      }
    }
    if (!anyFresh) {
      this.partials.delete(keyOf(revision));
      return undefined;
    }
    return sumOf(revision, [...latest.values()], now);
  }
}

function sumOf(revision: Pick<LoadPartial, 'tenant' | 'service' | 'revision'>, shares: NodeLoadShare[], now: number): LoadSample {
  const responses = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  let concurrency = 0;
  let rps = 0;
  let windowMs = 1;
  for (const share of shares) {
    concurrency += share.concurrency;
    rps += share.rps;
    windowMs = Math.max(windowMs, share.windowMs);
    for (const cls of ['2xx', '3xx', '4xx', '5xx'] as const) responses[cls] += share.responses[cls];
  }
  const answered = responses['2xx'] + responses['3xx'] + responses['4xx'] + responses['5xx'];
  return {
    schemaVersion: 1,
    tenant: revision.tenant,
    service: revision.service,
    revision: revision.revision,
    concurrency,
    rps,
    responses,
    errorRatio: answered > 0 ? Math.min(1, responses['5xx'] / answered) : 0,
    windowMs,
    ts: now,
    nodes: shares.length,
  };
}
