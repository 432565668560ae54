import type { ProtoObject } from '../../../resources.js';
import type { RouteIR, ServiceIR } from '../../ir.js';
import type { Feature } from '../feature.js';
import { EnvoyType, duration, typed, wrapped } from '../proto.js';

type RetrySpec = NonNullable<ServiceIR['retry']>;

/** HTTP retry conditions whose gRPC counterpart is UNAVAILABLE (the instance failed or could not be reached). */
const unavailableConditions = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'refused-stream']);

/**
 * The gRPC status names (Envoy's `retry_on` gRPC conditions, the only ones grpc-js-xds reads)
 * that correspond to the spec's HTTP conditions; HTTP 429 is RESOURCE_EXHAUSTED.
 */
export function grpcRetryConditions(retry: RetrySpec): string[] {
  const conditions: string[] = [];
  if (retry.on.some((condition) => unavailableConditions.has(condition))) conditions.push('unavailable');
  if (retry.on.includes('retriable-status-codes') && retry.statusCodes.includes(429)) conditions.push('resource-exhausted');
  return conditions;
}

/**
 * The per-try timeout Envoy gets: never below the route's timeout, so no attempt is cut before
 * the route allows (a per-try timer under it would reset every request longer than the spec's
 * default 30 s). None when the route has no timeout: attempts are then unbounded too.
 */
export function perTryTimeoutMs(retry: RetrySpec, route: RouteIR): number | undefined {
  return route.timeoutMs === 0 ? undefined : Math.max(retry.perTryTimeout, route.timeoutMs);
}

function envoyRetryPolicy(retry: RetrySpec, route: RouteIR, protocol: ServiceIR['protocol']): ProtoObject {
  // gRPC errors travel in trailers of a 200 response, so gRPC services also retry on gRPC status.
  const conditions = protocol === 'grpc' ? [...retry.on, ...grpcRetryConditions(retry)] : retry.on;
  const perTry = perTryTimeoutMs(retry, route);
  const policy: ProtoObject = {
    retry_on: conditions.join(','),
    num_retries: wrapped(retry.attempts),
    ...(perTry === undefined ? {} : { per_try_timeout: duration(perTry) }),
    // Each retry goes to another instance than the ones already tried.
    retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: typed(EnvoyType.PreviousHostsPredicate) }],
    host_selection_retry_max_attempts: 5,
  };
  if (retry.on.includes('retriable-status-codes')) policy.retriable_status_codes = retry.statusCodes;
  return policy;
}

/**
 * Where every route of a virtual host has the same retry policy (the usual case: it follows
 * from the service's retry spec and route timeouts), Envoy gets it once, on the virtual host.
 * Envoy builds a retry policy (and its host predicate) per route otherwise, on every build of
 * the route configuration: that was about half of an Envoy's CPU per update when all 10,000
 * routes shared one table (docs/translation.md). A route's own policy replaces the virtual
 * host's whole, so a host with differing policies keeps them per route.
 */
function hoistRetryPolicy(virtualHost: ProtoObject): void {
  const actions = (virtualHost.routes as ProtoObject[]).flatMap((route) => (route.route === undefined ? [] : [route.route as ProtoObject]));
  const policies = new Set(actions.map((action) => JSON.stringify(action.retry_policy)));
  if (actions.length === 0 || policies.size > 1 || actions[0]!.retry_policy === undefined) return;
  virtualHost.retry_policy = actions[0]!.retry_policy;
  for (const action of actions) delete action.retry_policy;
}

/** Retries (spec default: 5xx, reset, connect-failure and 429, twice, on another instance). */
export const retries: Feature = {
  name: 'retries',
  virtualHost(virtualHost, _service, { group }) {
    if (group === 'envoy') hoistRetryPolicy(virtualHost);
  },
  routeAction(action, route, service, { group }) {
    if (service.retry === undefined) return;
    if (group === 'envoy') {
      action.retry_policy = envoyRetryPolicy(service.retry, route, service.protocol);
      return;
    }
    // grpc-js-xds ignores HTTP conditions and per-try timeouts; without a gRPC condition it would not retry at all.
    const conditions = grpcRetryConditions(service.retry);
    if (conditions.length > 0) action.retry_policy = { retry_on: conditions.join(','), num_retries: wrapped(service.retry.attempts) };
  },
};
