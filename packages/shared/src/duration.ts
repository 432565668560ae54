import { z } from 'zod';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration written as milliseconds (number) or as a string with a unit ("500ms", "2s",
 * "1.5m", "1h"); always parsed to milliseconds, at most `maxMs`. The bound keeps every stored
 * value a safe integer that parses again (and far from protobuf Duration's limits).
 */
export function durationAtMost(maxMs: number) {
  return z
    .union([
      z.number().int().nonnegative(),
      z
        .string()
        .regex(/^\d{1,12}(\.\d{1,6})?(ms|s|m|h)$/, 'must be a duration such as "500ms", "30s", "2m" or "1h"')
        .transform((text) => {
          const [, amount, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text) as unknown as [string, string, string];
          return Math.round(Number(amount) * (units[unit] as number));
        }),
    ])
    .refine((ms) => ms <= maxMs, { message: `must be at most ${formatDuration(maxMs)}` });
}

/** Any duration in a spec: at most a day. */
export const duration = durationAtMost(24 * 3_600_000);

/** Request and route timeouts: at most an hour. */
export const timeoutDuration = durationAtMost(3_600_000);

function formatDuration(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms}ms`;
}

/** Converts milliseconds to the `google.protobuf.Duration` object form Envoy's protos use. */
export function protoDuration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}
