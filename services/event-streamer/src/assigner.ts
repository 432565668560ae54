/**
 * Which Envoys health-check which endpoint: each endpoint goes to the k checkers that rank
 * highest for it under rendezvous (highest-random-weight) hashing. Every checker's rank for an
 * endpoint depends only on the pair, so a checker joining takes over exactly the endpoints it
 * now ranks top-k for, and a checker leaving hands only its own endpoints to their next-ranked
 * checker: the fewest possible moves, and no endpoint is left unassigned while any capable
 * checker is connected.
 *
 * Pure: no I/O, no clock. Mutations record which checkers' assignments changed (they need a
 * new HealthCheckSpecifier) and which endpoints' checker sets changed (their votes move).
 */

export type CheckProtocol = 'http' | 'tcp';

interface Checker {
  hash: number;
  protocols: ReadonlySet<CheckProtocol>;
  /** The protocols as bits (http 1, tcp 2), for the join loop. */
  mask: number;
}

const protocolBit = (protocol: CheckProtocol) => (protocol === 'http' ? 1 : 2);

interface Assignment {
  key: string;
  /** Position in the dense list that joins iterate (faster than iterating the map). */
  index: number;
  hash: number;
  protocol: CheckProtocol;
  /** Assigned checkers, best rank first, and their scores at the same index. */
  checkers: string[];
  scores: number[];
}

export class Assigner {
  private readonly checkers = new Map<string, Checker>();
  private readonly endpoints = new Map<string, Assignment>();
  private readonly list: Assignment[] = [];
  // Per list index, what a join must test for every endpoint, in flat arrays: the endpoint's
  // hash, its protocol bit, and the score of its k-th checker (-1 while it has fewer).
  private hashes = new Uint32Array(256);
  private protocolBits = new Uint8Array(256);
  private floors = new Float64Array(256);
  private readonly byChecker = new Map<string, Set<string>>();
  private dirtyCheckers = new Set<string>();
  private changedEndpoints = new Set<string>();

  constructor(readonly checkersPerEndpoint: number) {
    if (!Number.isInteger(checkersPerEndpoint) || checkersPerEndpoint < 1)
      throw new Error('checkersPerEndpoint must be a positive integer');
  }

  get checkerCount(): number {
    return this.checkers.size;
  }

  get endpointCount(): number {
    return this.endpoints.size;
  }

  /** Endpoints no connected checker can take (none connected, or none with the protocol). */
  unassignedCount(): number {
    let count = 0;
    for (const assignment of this.endpoints.values()) if (assignment.checkers.length === 0) count++;
    return count;
  }

  hasChecker(id: string): boolean {
    return this.checkers.has(id);
  }

  hasEndpoint(key: string): boolean {
    return this.endpoints.has(key);
  }

  /** The checkers assigned to an endpoint, best rank first. */
  checkersOf(key: string): readonly string[] {
    return this.endpoints.get(key)?.checkers ?? [];
  }

  isAssigned(key: string, checker: string): boolean {
    return this.byChecker.get(checker)?.has(key) ?? false;
  }

  /** The endpoints a checker must check. */
  endpointsOf(checker: string): ReadonlySet<string> {
    return this.byChecker.get(checker) ?? new Set();
  }

  /** Checkers whose endpoint list changed since the last call, and endpoints whose checkers changed. */
  takeChanges(): { checkers: Set<string>; endpoints: Set<string> } {
    const changes = { checkers: this.dirtyCheckers, endpoints: this.changedEndpoints };
    this.dirtyCheckers = new Set();
    this.changedEndpoints = new Set();
    return changes;
  }

  /** Adds a checker (an Envoy's HDS stream). An empty protocol list means it can run every check. */
  addChecker(id: string, protocols: readonly CheckProtocol[]): void {
    this.addCheckers([{ id, protocols }]);
  }

  /**
   * Adds checkers in one pass over the endpoints (a fleet reconnecting arrives in bursts): each
   * endpoint weighs every newcomer against its current k-th checker.
   */
  addCheckers(entries: readonly { id: string; protocols: readonly CheckProtocol[] }[]): void {
    const fresh: [string, Checker][] = [];
    for (const { id, protocols } of entries) {
      const wanted = new Set<CheckProtocol>(protocols.length === 0 ? ['http', 'tcp'] : protocols);
      const existing = this.checkers.get(id);
      if (existing !== undefined) {
        // A reconnect with the same capabilities keeps its endpoints; it only needs them resent.
        if (sameSet(existing.protocols, wanted)) {
          this.dirtyCheckers.add(id);
          continue;
        }
        this.removeCheckers([id]);
      }
      const checker: Checker = { hash: hashString(id), protocols: wanted, mask: [...wanted].reduce((m, p) => m | protocolBit(p), 0) };
      this.checkers.set(id, checker);
      this.byChecker.set(id, new Set());
      this.dirtyCheckers.add(id);
      fresh.push([id, checker]);
    }
    if (fresh.length === 0) return;
    const k = this.checkersPerEndpoint;
    const { list, hashes, protocolBits, floors } = this;
    for (let i = 0; i < list.length; i++) {
      for (const [id, { hash, mask }] of fresh) {
        if ((protocolBits[i] & mask) === 0) continue;
        const score = pairScore(hash, hashes[i] as number);
        // Most pairs stop here: the newcomer ranks below the endpoint's k-th checker (ties go on, to the id order).
        if (score < (floors[i] as number)) continue;
        const assignment = list[i] as Assignment;
        const full = assignment.checkers.length >= k;
        if (full && !outranks(score, id, assignment.scores[k - 1] as number, assignment.checkers[k - 1] as string)) continue;
        if (full) this.unassign(assignment.key, assignment, k - 1);
        this.insertRanked(assignment.key, assignment, id, score);
      }
    }
  }

  /** Removes checkers (Envoys that disconnected) and hands their endpoints to the next-ranked checkers. */
  removeCheckers(ids: readonly string[]): void {
    const affected = new Set<string>();
    for (const id of ids) {
      if (!this.checkers.delete(id)) continue;
      for (const key of this.byChecker.get(id) ?? []) affected.add(key);
      this.byChecker.delete(id);
      this.dirtyCheckers.add(id);
    }
    for (const key of affected) {
      const assignment = this.endpoints.get(key) as Assignment;
      for (let i = assignment.checkers.length - 1; i >= 0; i--) {
        if (!this.checkers.has(assignment.checkers[i] as string)) {
          assignment.checkers.splice(i, 1);
          assignment.scores.splice(i, 1);
        }
      }
      this.changedEndpoints.add(key);
      this.updateFloor(assignment);
      this.fill(key, assignment);
    }
  }

  /** Adds an endpoint or changes its protocol; it gets its top-k capable checkers. */
  setEndpoint(key: string, protocol: CheckProtocol): void {
    const existing = this.endpoints.get(key);
    if (existing !== undefined && existing.protocol === protocol) return;
    if (existing !== undefined) this.removeEndpoint(key);
    const assignment: Assignment = { key, index: this.list.length, hash: hashString(key), protocol, checkers: [], scores: [] };
    this.endpoints.set(key, assignment);
    this.list.push(assignment);
    if (assignment.index >= this.hashes.length) this.grow();
    this.hashes[assignment.index] = assignment.hash;
    this.protocolBits[assignment.index] = protocolBit(protocol);
    this.floors[assignment.index] = -1;
    this.changedEndpoints.add(key);
    this.fill(key, assignment);
  }

  removeEndpoint(key: string): void {
    const assignment = this.endpoints.get(key);
    if (assignment === undefined) return;
    for (const checker of assignment.checkers) {
      this.byChecker.get(checker)?.delete(key);
      this.dirtyCheckers.add(checker);
    }
    this.endpoints.delete(key);
    const last = this.list.pop() as Assignment;
    if (last !== assignment) {
      this.list[assignment.index] = last;
      this.hashes[assignment.index] = this.hashes[last.index] as number;
      this.protocolBits[assignment.index] = this.protocolBits[last.index] as number;
      this.floors[assignment.index] = this.floors[last.index] as number;
      last.index = assignment.index;
    }
    this.changedEndpoints.add(key);
  }

  /** Tops an endpoint up to k checkers from the capable checkers not already assigned, best rank first. */
  private fill(key: string, assignment: Assignment): void {
    const k = this.checkersPerEndpoint;
    if (assignment.checkers.length >= k) return;
    const taken = new Set(assignment.checkers);
    const bestIds: string[] = [];
    const bestScores: number[] = [];
    const wanted = k - assignment.checkers.length;
    for (const [id, checker] of this.checkers) {
      if (taken.has(id) || !checker.protocols.has(assignment.protocol)) continue;
      const score = pairScore(checker.hash, assignment.hash);
      if (bestIds.length === wanted && !outranks(score, id, bestScores[wanted - 1] as number, bestIds[wanted - 1] as string)) continue;
      let at = bestIds.length;
      while (at > 0 && outranks(score, id, bestScores[at - 1] as number, bestIds[at - 1] as string)) at--;
      bestIds.splice(at, 0, id);
      bestScores.splice(at, 0, score);
      if (bestIds.length > wanted) {
        bestIds.pop();
        bestScores.pop();
      }
    }
    bestIds.forEach((id, i) => this.insertRanked(key, assignment, id, bestScores[i] as number));
  }

  private insertRanked(key: string, assignment: Assignment, id: string, score: number): void {
    let at = assignment.checkers.length;
    while (at > 0 && outranks(score, id, assignment.scores[at - 1] as number, assignment.checkers[at - 1] as string)) at--;
    assignment.checkers.splice(at, 0, id);
    assignment.scores.splice(at, 0, score);
    this.byChecker.get(id)?.add(key);
    this.dirtyCheckers.add(id);
    this.changedEndpoints.add(key);
    this.updateFloor(assignment);
  }

  private unassign(key: string, assignment: Assignment, index: number): void {
    const [id] = assignment.checkers.splice(index, 1) as [string];
    assignment.scores.splice(index, 1);
    this.byChecker.get(id)?.delete(key);
    this.dirtyCheckers.add(id);
    this.changedEndpoints.add(key);
    this.updateFloor(assignment);
  }

  private updateFloor(assignment: Assignment): void {
    const k = this.checkersPerEndpoint;
    this.floors[assignment.index] = assignment.checkers.length >= k ? (assignment.scores[k - 1] as number) : -1;
  }

  private grow(): void {
    const size = this.hashes.length * 2;
    const hashes = new Uint32Array(size);
    const protocolBits = new Uint8Array(size);
    const floors = new Float64Array(size);
    hashes.set(this.hashes);
    protocolBits.set(this.protocolBits);
    floors.set(this.floors);
    this.hashes = hashes;
    this.protocolBits = protocolBits;
    this.floors = floors;
  }
}

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

/** Rank order: higher score first, ties broken by id so the order is total and stable. */
function outranks(score: number, id: string, otherScore: number, otherId: string): boolean {
  return score > otherScore || (score === otherScore && id < otherId);
}

/** FNV-1a over UTF-16 code units, finished with a murmur3 mix so short, similar ids spread well. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** The rendezvous weight of a (checker, endpoint) pair. */
export function pairScore(checkerHash: number, endpointHash: number): number {
  return mix32(checkerHash ^ Math.imul(endpointHash, 0x9e3779b1));
}

function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
