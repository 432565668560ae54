/**
 * Admission of load samples: per revision, timestamps must grow, and a sample may not be
 * stamped further ahead of this replica's clock than the allowed skew. A sample that breaks
 * either rule would bend the window averages (a replayed old sample, a clock gone wrong), so
 * it is dropped and counted instead.
 */

export type LoadVerdict = 'accepted' | 'out_of_order' | 'from_future';

export class LoadGate {
  private readonly lastTs = new Map<string, number>();

  constructor(private readonly maxClockSkewMs: number) {}

  admit(revisionKey: string, ts: number, now: number): LoadVerdict {
    if (ts > now + this.maxClockSkewMs) return 'from_future';
    const last = this.lastTs.get(revisionKey);
    if (last !== undefined && ts <= last) return 'out_of_order';
    this.lastTs.set(revisionKey, ts);
    return 'accepted';
  }

  forget(revisionKey: string): void {
    this.lastTs.delete(revisionKey);
  }
}
