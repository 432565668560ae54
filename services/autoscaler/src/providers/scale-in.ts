import type { InstanceState } from '../provider.js';

export interface ScaleInCandidate {
  id: string;
  state: InstanceState;
  startedAt: number;
}

/**
 * Which `surplus` instances to retire when scaling in, for every provider: starting ones first
 * (they serve nobody yet), then the newest ready ones (the oldest have proven themselves).
 * Draining instances are already leaving and are never picked.
 */
export function pickScaleIn<T extends ScaleInCandidate>(instances: readonly T[], surplus: number): T[] {
  const rank = (i: ScaleInCandidate) => (i.state === 'starting' ? 1 : 0);
  return instances
    .filter((i) => i.state !== 'draining')
    .sort((a, b) => rank(b) - rank(a) || b.startedAt - a.startedAt)
    .slice(0, Math.max(0, surplus));
}
