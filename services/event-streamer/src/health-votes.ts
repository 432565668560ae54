import type { HealthTransition, RevisionRef } from '@switchyard/shared';

/**
 * Turns the health results of an endpoint's assigned checkers into one state per endpoint and
 * reports only the changes. Rules:
 * - a checker's latest result is its vote; a vote older than `staleAfterMs` no longer counts
 *   (the checker stopped reporting), and results from checkers not assigned the endpoint are
 *   refused;
 * - the electorate is the checkers with a current vote plus those assigned less than
 *   `staleAfterMs` ago that have not reported yet;
 * - healthy when more than half of the electorate says healthy, unhealthy when more than half
 *   says unhealthy, unchanged otherwise;
 * - during the grace period after an instance starts, unhealthy votes cannot make it
 *   unhealthy (App Runner roadmap #102): a starting instance fails its checks until it listens;
 * - with no vote at all for `staleAfterMs`, the state becomes unknown;
 * - with several event-streamer replicas, only the replica that aggregates an endpoint decides
 *   its state (it alone receives the votes); the others follow the state it publishes, so
 *   whichever replica takes over names the right previous state.
 *
 * Pure: time is an argument, nothing is published here.
 */

export type HealthState = HealthTransition['state'];
export type Vote = 'healthy' | 'unhealthy';

export interface TrackedEndpoint {
  key: string;
  ref: RevisionRef;
  address: string;
  port: number;
  id?: string;
  /** When the instance started (or was first seen); the grace period counts from here. */
  startedAt: number;
  gracePeriodMs: number;
}

interface Entry extends TrackedEndpoint {
  state: HealthState;
  /** Assigned checkers and when each was assigned. */
  checkers: Map<string, number>;
  votes: Map<string, { state: Vote; ts: number }>;
  /** Last time any assigned checker reported, or when tracking started (or aggregation moved here). */
  lastHeardAt: number;
  /** Whether this replica aggregates the endpoint (always, with one replica). */
  owned: boolean;
}

export type ReportOutcome = 'accepted' | 'unknown_endpoint' | 'not_assigned' | 'not_aggregated_here';

export class Aggregator {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: { staleAfterMs: number }) {}

  get size(): number {
    return this.entries.size;
  }

  stateOf(key: string): HealthState | undefined {
    return this.entries.get(key)?.state;
  }

  startedAtOf(key: string): number | undefined {
    return this.entries.get(key)?.startedAt;
  }

  /**
   * Starts tracking an endpoint, or updates its settings. `initialState` is the state last
   * published for it (after a restart), so the next transition names the right previous state.
   */
  track(endpoint: TrackedEndpoint, now: number, initialState: HealthState = 'unknown'): void {
    const existing = this.entries.get(endpoint.key);
    if (existing !== undefined) {
      Object.assign(existing, endpoint);
      return;
    }
    this.entries.set(endpoint.key, {
      ...endpoint,
      state: initialState,
      checkers: new Map(),
      votes: new Map(),
      lastHeardAt: now,
      owned: true,
    });
  }

  /**
   * Says whether this replica aggregates an endpoint. Taking it over starts its silence clock
   * afresh (the votes are only now routed here); giving it up drops the votes held.
   */
  setAggregatedHere(key: string, owned: boolean, now: number): void {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.owned === owned) return;
    entry.owned = owned;
    if (owned) entry.lastHeardAt = now;
    else entry.votes.clear();
  }

  /** Follows a state another replica published for an endpoint it aggregates; false if this replica aggregates it. */
  observe(key: string, state: HealthState): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.owned) return false;
    entry.state = state;
    return true;
  }

  untrack(key: string): void {
    this.entries.delete(key);
  }

  /** Sets the checkers assigned to an endpoint; votes of checkers no longer assigned are dropped. */
  setCheckers(key: string, checkers: readonly string[], now: number): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    // In place: this runs for every endpoint a joining or leaving Envoy touches.
    for (const checker of entry.checkers.keys()) {
      if (checkers.includes(checker)) continue;
      entry.checkers.delete(checker);
      entry.votes.delete(checker);
    }
    for (const checker of checkers) if (!entry.checkers.has(checker)) entry.checkers.set(checker, now);
  }

  /** Records one checker's result; `abstain` withdraws its vote (a status that says nothing about health). */
  report(key: string, checker: string, vote: Vote | 'abstain', now: number): { outcome: ReportOutcome; transition?: HealthTransition } {
    const entry = this.entries.get(key);
    if (entry === undefined) return { outcome: 'unknown_endpoint' };
    if (!entry.owned) return { outcome: 'not_aggregated_here' };
    if (!entry.checkers.has(checker)) return { outcome: 'not_assigned' };
    entry.lastHeardAt = now;
    if (vote === 'abstain') entry.votes.delete(checker);
    else entry.votes.set(checker, { state: vote, ts: now });
    const transition = this.evaluate(entry, now);
    return transition === undefined ? { outcome: 'accepted' } : { outcome: 'accepted', transition };
  }

  /** Expires stale votes, ends grace periods and returns the transitions that follow. */
  tick(now: number): HealthTransition[] {
    const transitions: HealthTransition[] = [];
    for (const entry of this.entries.values()) {
      const transition = this.evaluate(entry, now);
      if (transition !== undefined) transitions.push(transition);
    }
    return transitions;
  }

  private evaluate(entry: Entry, now: number): HealthTransition | undefined {
    if (!entry.owned) return undefined;
    const { staleAfterMs } = this.options;
    for (const [checker, vote] of entry.votes) if (now - vote.ts > staleAfterMs) entry.votes.delete(checker);
    const votes = [...entry.votes.values()];
    const healthy = votes.filter((v) => v.state === 'healthy').length;
    const unhealthy = votes.length - healthy;
    // A checker assigned a moment ago has not had the chance to report yet: it still counts
    // in the electorate, so the first result alone does not decide for three checkers.
    let total = votes.length;
    for (const [checker, assignedAt] of entry.checkers) if (!entry.votes.has(checker) && now - assignedAt <= staleAfterMs) total++;
    const inGrace = now < entry.startedAt + entry.gracePeriodMs;
    let next: HealthState = entry.state;
    let reason = '';
    if (votes.length === 0) {
      if (now - entry.lastHeardAt > staleAfterMs) {
        next = 'unknown';
        reason =
          entry.checkers.size === 0 ? 'no Envoy able to run its check is connected' : `no assigned checker reported for ${staleAfterMs} ms`;
      }
    } else if (healthy * 2 > total) {
      next = 'healthy';
      reason = `${healthy} of ${total} checkers report healthy`;
    } else if (unhealthy * 2 > total && !inGrace) {
      next = 'unhealthy';
      reason = `${unhealthy} of ${total} checkers report unhealthy`;
    }
    if (next === entry.state) return undefined;
    const previous = entry.state;
    entry.state = next;
    return {
      schemaVersion: 1,
      ...entry.ref,
      endpoint: { address: entry.address, port: entry.port, ...(entry.id === undefined ? {} : { id: entry.id }) },
      state: next,
      previous,
      reason,
      votes: [...entry.votes].map(([checker, vote]) => ({ checker, state: vote.state, ts: vote.ts })),
      ts: now,
    };
  }
}
