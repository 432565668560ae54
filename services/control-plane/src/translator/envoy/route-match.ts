import type { NodeGroup, ProtoObject } from '../../resources.js';
import type { HeaderMatchIR, QueryMatchIR, RouteIR } from '../ir.js';

/**
 * A regex as each group needs it. Envoy matches the whole value; grpc-js-xds compiles
 * `^${regex}$`, which for a top-level alternation such as `a|b` means "starts with a or ends
 * with b". A non-capturing group gives gRPC clients Envoy's meaning.
 */
function regexFor(regex: string, group: NodeGroup): { regex: string } {
  return { regex: group === 'grpc' ? `(?:${regex})` : regex };
}

function stringMatch(
  matcher: { exact?: string | undefined; prefix?: string | undefined; regex?: string | undefined },
  group: NodeGroup,
): ProtoObject | undefined {
  if (matcher.exact !== undefined) return { exact: matcher.exact };
  if (matcher.prefix !== undefined) return { prefix: matcher.prefix };
  if (matcher.regex !== undefined) return { safe_regex: regexFor(matcher.regex, group) };
  return undefined;
}

export function headerMatcher(header: HeaderMatchIR, group: NodeGroup): ProtoObject {
  const matcher: ProtoObject = { name: header.name.toLowerCase() };
  const value = stringMatch(header, group);
  if (value !== undefined) matcher.string_match = value;
  else if (header.range !== undefined) matcher.range_match = { start: header.range.start, end: header.range.end };
  else matcher.present_match = true;
  if (header.invert) matcher.invert_match = true;
  return matcher;
}

/** Query-parameter matchers exist for Envoy only (see {@link routeAppliesTo}). */
export function queryMatcher(query: QueryMatchIR): ProtoObject {
  const value = stringMatch(query, 'envoy');
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

export function routeMatch(route: RouteIR, group: NodeGroup): ProtoObject {
  const match: ProtoObject = {};
  if (route.path.kind === 'regex') match.safe_regex = regexFor(route.path.value, group);
  else match[route.path.kind] = route.path.value;
  if (route.headers.length > 0) match.headers = route.headers.map((header) => headerMatcher(header, group));
  if (route.queryParams.length > 0) match.query_parameters = route.queryParams.map(queryMatcher);
  return match;
}
