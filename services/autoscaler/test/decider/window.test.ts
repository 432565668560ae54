import { describe, expect, it } from 'vitest';
import { addPoint, recentRps, windowAverage, windowEnd, type LoadPoint } from '../../src/decider/window.js';

const point = (ts: number, concurrency: number, windowMs = 1000, rps = 0): LoadPoint => ({ ts, concurrency, rps, windowMs });

describe('window averages', () => {
  const cases: { label: string; points: LoadPoint[]; end: number; windowMs: number; want: number }[] = [
    { label: 'no points', points: [], end: 10_000, windowMs: 6000, want: 0 },
    {
      label: 'constant load',
      points: [1, 2, 3, 4, 5, 6, 7, 8].map((s) => point(s * 1000, 50)),
      end: 8000,
      windowMs: 6000,
      want: 50,
    },
    {
      label: 'history shorter than the window is averaged over its own span',
      points: [point(1000, 100), point(2000, 200)],
      end: 2000,
      windowMs: 60_000,
      want: 150,
    },
    {
      label: 'a new point counts at once',
      points: [1, 2, 3, 4, 5].map((s) => point(s * 1000, 0)).concat(point(6000, 600)),
      end: 6000,
      windowMs: 6000,
      want: 100,
    },
    {
      label: 'time no point covers counts as zero',
      points: [point(1000, 100), point(4000, 100)],
      end: 4000,
      windowMs: 4000,
      want: 50,
    },
    {
      label: 'points older than the window do not count',
      points: [point(1000, 1000), point(2000, 10), point(3000, 10)],
      end: 3000,
      windowMs: 2000,
      want: 10,
    },
    {
      label: 'a point spanning the window start counts for its overlap',
      points: [point(2000, 100, 2000), point(3000, 0)],
      end: 3000,
      windowMs: 2000,
      want: 50,
    },
  ];
  for (const c of cases) {
    it(c.label, () => {
      expect(windowAverage(c.points, c.end, c.windowMs)).toBeCloseTo(c.want, 9);
    });
  }

  it('ends at the newest point while it is fresh and at now once it is stale', () => {
    const points = [point(1000, 100), point(2000, 100)];
    expect(windowEnd(points, 2500)).toBe(2000);
    expect(windowEnd(points, 3000)).toBe(2000);
    expect(windowEnd(points, 3001)).toBe(3001);
    expect(windowEnd([], 42)).toBe(42);
    // Once stale, the silence after the last report counts as no load.
    expect(windowAverage(points, 6000, 6000)).toBeCloseTo(200 / 6, 9);
  });

  it('keeps only the points a window can still reach', () => {
    let points: LoadPoint[] = [];
    for (let s = 1; s <= 100; s++) points = addPoint(points, point(s * 1000, s), 10_000);
    expect(points.length).toBe(11);
    expect(points[0]?.ts).toBe(90_000);
    expect(windowAverage(points, 100_000, 10_000)).toBeCloseTo((91 + 100) / 2, 9);
  });

  it('reports the highest recent request rate', () => {
    const points = [point(1000, 0, 1000, 5), point(2000, 0, 1000, 2), point(9000, 0, 1000, 1)];
    expect(recentRps(points, 9000, 6000)).toBe(1);
    expect(recentRps(points, 2000, 6000)).toBe(5);
  });
});
