/**
 * Load traces for the simulation benchmark: demand (requests in flight) as a function of
 * time in seconds. Noise comes from a seeded generator so every run replays the same load.
 */

export interface Trace {
  name: string;
  durationS: number;
  demand: (t: number) => number;
}

/** Mulberry32: a small seeded PRNG, enough for reproducible noise. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Multiplies a trace by noise that changes once a second (±`amplitude`). */
function noisy(demand: (t: number) => number, amplitude: number, seed: number, durationS: number): (t: number) => number {
  const random = seeded(seed);
  const factors = Array.from({ length: Math.ceil(durationS) + 1 }, () => 1 + amplitude * (2 * random() - 1));
  return (t) => demand(t) * (factors[Math.floor(t)] ?? 1);
}

export function traces(scale = 1): Trace[] {
  const peak = 1000 * scale;
  return [
    { name: 'step', durationS: 300, demand: (t) => (t < 30 ? 0 : peak) },
    {
      name: 'spike',
      durationS: 240,
      demand: (t) => (t >= 60 && t < 70 ? 0.8 * peak : 0.1 * peak),
    },
    {
      name: 'sawtooth',
      durationS: 360,
      // Rises from 10 % to 90 % of the peak over a minute, then falls back at once.
      demand: (t) => peak * (0.1 + 0.8 * ((t % 60) / 60)),
    },
    {
      name: 'slow-ramp',
      durationS: 720,
      demand: (t) => (t < 600 ? peak * (t / 600) : peak),
    },
    {
      name: 'diurnal',
      durationS: 3600,
      // A day compressed into an hour: trough at 10 %, peak at 100 %, ±10 % noise.
      demand: noisy((t) => peak * (0.55 - 0.45 * Math.cos((2 * Math.PI * t) / 3600)), 0.1, 7, 3600),
    },
  ];
}
