/**
 * Time-weighted averages of a revision's load over a sliding window.
 *
 * A load point describes the `windowMs` before its timestamp (the stats-sink's report
 * interval), so a new point counts at once: a step in demand moves the averages on the very
 * sample that shows it. Time no point covers counts as zero load, as a silent stats-sink means
 * no Envoy had requests in flight to report. While the newest point is younger than its own
 * window the averages end at that point ("nothing newer is known yet"); after that they end at
 * `now`, so a revision whose load reports stop decays to zero.
 */

export interface LoadPoint {
  /** End of the interval the point describes (ms since the epoch). */
  ts: number;
  /** Requests in flight for the revision across the fleet. */
  concurrency: number;
  /** Requests per second over the interval (used to wake a revision at zero instances). */
  rps: number;
  /** Length of the interval the point describes. */
  windowMs: number;
}

/** Appends a point (ts must not go backwards) and forgets points that no window of `keepMs` can reach. */
export function addPoint(points: readonly LoadPoint[], point: LoadPoint, keepMs: number): LoadPoint[] {
  const horizon = point.ts - keepMs;
  // Keep the newest point that ends before the horizon: it bounds the coverage of the next one.
  let first = 0;
  while (first + 1 < points.length && (points[first + 1] as LoadPoint).ts <= horizon) first++;
  return [...points.slice(first), point];
}

/** Where the averages end: the newest point while it is fresh, else `now`. */
export function windowEnd(points: readonly LoadPoint[], now: number): number {
  const last = points.at(-1);
  if (last === undefined) return now;
  return now - last.ts <= last.windowMs ? last.ts : now;
}

/**
 * Average concurrency over `(end - windowMs, end]`, or over the part of it since the first
 * point when the history is shorter than the window (a fresh revision is not averaged with
 * zeros it never had).
 */
export function windowAverage(points: readonly LoadPoint[], end: number, windowMs: number): number {
  const first = points[0];
  if (first === undefined) return 0;
  const spanStart = Math.max(end - windowMs, first.ts - first.windowMs);
  if (end <= spanStart) return 0;
  let total = 0;
  let previousTs = -Infinity;
  for (const point of points) {
    const from = Math.max(previousTs, point.ts - point.windowMs, spanStart);
    const to = Math.min(point.ts, end);
    if (to > from) total += point.concurrency * (to - from);
    previousTs = point.ts;
  }
  return total / (end - spanStart);
}

/** Highest request rate among the points of the last `windowMs` before `end`. */
export function recentRps(points: readonly LoadPoint[], end: number, windowMs: number): number {
  let rps = 0;
  for (const point of points) if (point.ts > end - windowMs && point.ts <= end) rps = Math.max(rps, point.rps);
  return rps;
}
