import type { ServiceSpec } from '@switchyard/shared';
import { certificateProblems } from './certificates.js';
import { re2Problem } from './regex.js';

/**
 * The checks of one service spec beyond its schema: what Envoy or gRPC would reject (RE2
 * regexes, zero durations, duplicate endpoints, certificates). One module, two callers: the
 * API answers 400 with these problems, the translator leaves a stored service that has any of
 * them out. Fields are relative to the spec (`routes[0].match.regex`).
 */

export interface Problem {
  field: string;
  message: string;
}

/** Problems of `spec`; with `now`, also certificates not valid at that time (the API's write-time check). */
export function specProblems(spec: ServiceSpec, now?: number): Problem[] {
  return [
    ...regexProblems(spec),
    ...endpointProblems(spec),
    ...durationProblems(spec),
    ...(spec.tls ? certificateProblems(spec.tls.certificateChain, spec.tls.privateKey, now) : []),
  ];
}

function regexProblems(spec: ServiceSpec): Problem[] {
  const problems: Problem[] = [];
  const check = (pattern: string | undefined, field: string) => {
    const problem = pattern === undefined ? undefined : re2Problem(pattern);
    if (problem !== undefined) problems.push({ field, message: problem });
  };
  spec.routes.forEach((route, i) => {
    const at = `routes[${i}].match`;
    check(route.match.regex, `${at}.regex`);
    route.match.headers.forEach((header, j) => check(header.regex, `${at}.headers[${j}].regex`));
    route.match.queryParams.forEach((query, j) => check(query.regex, `${at}.queryParams[${j}].regex`));
  });
  return problems;
}

function endpointProblems(spec: ServiceSpec): Problem[] {
  const problems: Problem[] = [];
  spec.revisions.forEach((revision, i) => {
    const seen = new Map<string, number>();
    revision.endpoints?.forEach((endpoint, j) => {
      const key = `${endpoint.address}:${endpoint.port}`;
      const first = seen.get(key);
      if (first !== undefined)
        problems.push({ field: `revisions[${i}].endpoints[${j}]`, message: `duplicates endpoints[${first}] (${key})` });
      else seen.set(key, j);
    });
  });
  return problems;
}

/** Envoy requires these durations to be positive and would reject the cluster. */
function durationProblems(spec: ServiceSpec): Problem[] {
  const positive: [number | undefined, string][] = [
    [spec.healthCheck.interval, 'healthCheck.interval'],
    [spec.healthCheck.timeout, 'healthCheck.timeout'],
    [spec.outlierDetection?.interval, 'outlierDetection.interval'],
    [spec.outlierDetection?.baseEjectionTime, 'outlierDetection.baseEjectionTime'],
  ];
  return positive.filter(([ms]) => ms !== undefined && ms <= 0).map(([, field]) => ({ field, message: 'must be longer than 0' }));
}
