import type { NodeGroup, ProtoObject } from '../../resources.js';
import type { HeaderMatchIR, QueryMatchIR, RouteIR } from '../ir.js';

function stringMatch(matcher: {
  exact?: string | undefined;
  prefix?: string | undefined;
  regex?: string | undefined;
}): ProtoObject | undefined {
  if (matcher.exact !== undefined) return { exact: matcher.exact };
  if (matcher.prefix !== undefined) return { prefix: matcher.prefix };
  if (matcher.regex !== undefined) return { safe_regex: { regex: matcher.regex } };
  return undefined;
}

export function headerMatcher(header: HeaderMatchIR): ProtoObject {
  const matcher: ProtoObject = { name: header.name.toLowerCase() };
  const value = stringMatch(header);
  if (value !== undefined) matcher.string_match = value;
  else if (header.range !== undefined) matcher.range_match = { start: header.range.start, end: header.range.end };
  else matcher.present_match = true;
  if (header.invert) matcher.invert_match = true;
  return matcher;
}

export function queryMatcher(query: QueryMatchIR): ProtoObject {
  const value = stringMatch(query);
  return value === undefined ? { name: query.name, present_match: true } : { name: query.name, string_match: value };
}

/**
 * Whether a route exists for the group: gRPC requests carry no query string, and grpc-js-xds
 * ignores query matchers (so it would match what Envoy does not); such routes are left out for
 * gRPC clients.
 */
export function routeAppliesTo(route: RouteIR, group: NodeGroup): boolean {
  return group === 'envoy' || route.queryParams.length === 0;
}

export function routeMatch(route: RouteIR): ProtoObject {
  const match: ProtoObject = {};
  if (route.path.kind === 'regex') match.safe_regex = { regex: route.path.value };
  else match[route.path.kind] = route.path.value;
  if (route.headers.length > 0) match.headers = route.headers.map(headerMatcher);
  if (route.queryParams.length > 0) match.query_parameters = route.queryParams.map(queryMatcher);
  return match;
}
