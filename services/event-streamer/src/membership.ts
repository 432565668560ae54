import { hashString, pairScore, type CheckProtocol } from './assigner.js';

/**
 * Who is in the health-checking fleet when several event-streamer replicas share it: each
 * replica heartbeats the Envoys connected to it into a KV bucket, and every replica derives the
 * same view from those heartbeats — the live replicas and the union of their Envoys, each Envoy
 * owned by exactly one replica. Every replica feeds that union to its own {@link Assigner}, so
 * all compute the same rendezvous assignment; each sends specifiers to the Envoys connected to it.
 *
 * Pure: heartbeats and the time come in as values.
 */

/** One replica's heartbeat (a KV entry keyed by the replica id). */
export interface ReplicaHeartbeat {
  replica: string;
  /**
   * When this replica last received it, by its own clock, in ms: the replicas' clocks never
   * get compared, so skew between them cannot keep a dead replica alive or expire a live one.
   */
  at: number;
  envoys: readonly ConnectedEnvoy[];
}

export interface ConnectedEnvoy {
  node: string;
  /** The checks it can run; empty means every protocol. */
  protocols: readonly CheckProtocol[];
  /** When its HDS stream to its replica opened, in ms (that replica's clock; only breaks ties between two streams of one Envoy). */
  connectedAt: number;
}

export interface FleetMember {
  replica: string;
  protocols: readonly CheckProtocol[];
  connectedAt: number;
}

export interface FleetView {
  /** The replicas whose heartbeat is fresh, sorted. */
  replicas: string[];
  /** Every Envoy connected to a live replica, with the one replica that owns it. */
  checkers: Map<string, FleetMember>;
}

/**
 * The fleet as the heartbeats describe it at `now`. A heartbeat older than `ttlMs` means its
 * replica is gone, and so are its Envoys (they reconnect to a live one). An Envoy listed by two
 * live replicas has moved and the old replica has not yet seen its stream end: the later
 * connection owns it (ties by replica id), so it is counted once.
 */
export function fleetView(heartbeats: readonly ReplicaHeartbeat[], now: number, ttlMs: number): FleetView {
  const live = heartbeats.filter((h) => now - h.at <= ttlMs);
  const checkers = new Map<string, FleetMember>();
  for (const { replica, envoys } of live) {
    for (const { node, protocols, connectedAt } of envoys) {
      const current = checkers.get(node);
      if (current === undefined || newerConnection(connectedAt, replica, current)) checkers.set(node, { replica, protocols, connectedAt });
    }
  }
  return { replicas: live.map((h) => h.replica).sort(), checkers };
}

function newerConnection(connectedAt: number, replica: string, than: FleetMember): boolean {
  return connectedAt > than.connectedAt || (connectedAt === than.connectedAt && replica < than.replica);
}

/** What the assigner must be told when the view changes: Envoys gone, and Envoys new or with other protocols. */
export function checkerChanges(
  previous: FleetView,
  next: FleetView,
): { add: { id: string; protocols: readonly CheckProtocol[] }[]; remove: string[] } {
  const remove = [...previous.checkers.keys()].filter((id) => !next.checkers.has(id));
  const add = [...next.checkers]
    .filter(([id, member]) => {
      const before = previous.checkers.get(id);
      return before === undefined || !sameProtocols(before.protocols, member.protocols);
    })
    .map(([id, member]) => ({ id, protocols: member.protocols }));
  return { add, remove };
}

function sameProtocols(a: readonly CheckProtocol[], b: readonly CheckProtocol[]): boolean {
  const set = new Set(a.length === 0 ? ['http', 'tcp'] : a);
  const other = new Set(b.length === 0 ? ['http', 'tcp'] : b);
  return set.size === other.size && [...set].every((p) => other.has(p));
}

/**
 * The replica that aggregates an endpoint's votes (every replica forwards its Envoys' results
 * for it there) and publishes its transitions: the live replica ranking highest for it under
 * rendezvous hashing, so each change is published once, and a replica leaving moves only the
 * endpoints it aggregated. Undefined while no replica is live.
 */
export function aggregatorOf(endpoint: string, replicas: readonly string[]): string | undefined {
  const endpointHash = hashString(endpoint);
  let best: { replica: string; score: number } | undefined;
  for (const replica of replicas) {
    const score = pairScore(hashString(replica), endpointHash);
    if (best === undefined || score > best.score || (score === best.score && replica < best.replica)) best = { replica, score };
  }
  return best?.replica;
}
