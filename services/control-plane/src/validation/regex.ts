import { createRequire } from 'node:module';

// RE2 itself, without re2-wasm's JavaScript-syntax translation (Envoy gets the pattern as is).
// Its objects live in WebAssembly memory and must be deleted: never freed, they exhaust it.
interface CompiledRE2 {
  ok(): boolean;
  error(): string;
  delete(): void;
}
const { WrappedRE2 } = createRequire(import.meta.url)('re2-wasm/build/wasm/re2.js') as {
  WrappedRE2: new (pattern: string, ignoreCase: boolean, multiline: boolean, dotAll: boolean) => CompiledRE2;
};

/**
 * Tenant regexes are checked with RE2 (the engine of Envoy and of grpc-js-xds), not with
 * JavaScript's RegExp: lookarounds and backreferences pass RegExp but make Envoy NACK the
 * service's route configuration, and grpc-js-xds throws while applying it.
 *
 * Envoy also rejects regexes whose compiled RE2 program exceeds a size (runtime
 * `re2.max_program_size.error_level`, default 100; deploy/envoy/bootstrap.yaml raises it to 1000).
 * RE2's program size is not exposed to JavaScript, so {@link estimateProgramSize} gives an upper
 * estimate and the translator keeps regexes under {@link maxProgramSize}, leaving a tenfold
 * margin below the bootstrap's limit.
 */
export const maxProgramSize = 100;

/** Cost of a character class or "." in a UTF-8 RE2 program: several byte ranges each. */
const classCost = 10;

/** Verdicts by pattern: every translation checks every route, and most patterns repeat. */
const verdicts = new Map<string, string | undefined>();
const maxVerdicts = 10_000;

/** Returns why RE2 (as Envoy and gRPC run it) would not accept the pattern, or undefined. */
export function re2Problem(pattern: string): string | undefined {
  if (verdicts.has(pattern)) return verdicts.get(pattern);
  const verdict = compileProblem(pattern) ?? sizeProblem(pattern);
  if (verdicts.size >= maxVerdicts) verdicts.clear();
  verdicts.set(pattern, verdict);
  return verdict;
}

function compileProblem(pattern: string): string | undefined {
  // Envoy compiles the pattern as is; grpc-js-xds anchors it (`^${pattern}$`), which a valid pattern survives.
  const compiled = new WrappedRE2(pattern, false, false, false);
  try {
    return compiled.ok() ? undefined : `is not a valid RE2 regular expression (no lookaround or backreferences): ${compiled.error()}`;
  } finally {
    compiled.delete();
  }
}

function sizeProblem(pattern: string): string | undefined {
  const size = estimateProgramSize(pattern);
  return size > maxProgramSize ? `is too complex for Envoy (estimated RE2 program size ${size}, at most ${maxProgramSize})` : undefined;
}

/**
 * An upper estimate of RE2's compiled program size: literals count 1, classes and escapes
 * of classes {@link classCost}, operators 1, and a counted repetition `{n,m}` repeats the
 * preceding atom max(n, m) times, as RE2 expands it.
 */
export function estimateProgramSize(pattern: string): number {
  // Stack of group costs; the innermost open group is last.
  const groups: number[] = [0];
  let lastAtom = 0;
  let i = 0;
  const add = (cost: number) => {
    groups[groups.length - 1] = (groups.at(-1) as number) + cost;
  };
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      lastAtom = /[dDwWsSpP]/.test(next) ? classCost : 1;
      i += next === 'p' || next === 'P' ? skipUnicodeClass(pattern, i + 2) - i : 2;
      add(lastAtom);
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      lastAtom = classCost;
      add(lastAtom);
      i = end + 1;
    } else if (c === '(') {
      groups.push(0);
      // Skip a group prefix such as "?:", "?P<name>" or "?<name>".
      const prefix = /^\(\?(?:P?<[^>]*>|[a-zA-Z]*:?)/.exec(pattern.slice(i));
      i += prefix ? prefix[0].length : 1;
    } else if (c === ')') {
      const inner = groups.length > 1 ? (groups.pop() as number) : 0;
      lastAtom = inner + 2;
      add(lastAtom);
      i += 1;
    } else if (c === '{') {
      const counted = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (counted) {
        const times = Math.max(Number(counted[1]), counted[2] ? Number(counted[2]) : 0, 1);
        add(lastAtom * (times - 1) + times);
        i += counted[0].length;
      } else {
        lastAtom = 1;
        add(1);
        i += 1;
      }
    } else if (c === '.') {
      lastAtom = classCost;
      add(lastAtom);
      i += 1;
    } else {
      // Literals, anchors, "|", "*", "+", "?".
      lastAtom = 1;
      add(1);
      i += 1;
    }
  }
  return groups.reduce((sum, cost) => sum + cost, 0) + 2;
}

function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === '^') i += 1;
  if (pattern[i] === ']') i += 1;
  while (i < pattern.length && pattern[i] !== ']') {
    if (pattern[i] === '\\') i += 1;
    else if (pattern.startsWith('[:', i) && pattern.indexOf(':]', i) > 0) i = pattern.indexOf(':]', i) + 1;
    i += 1;
  }
  return i;
}

function skipUnicodeClass(pattern: string, at: number): number {
  if (pattern[at] === '{') {
    const close = pattern.indexOf('}', at);
    return close < 0 ? pattern.length : close + 1;
  }
  return at + 1;
}
