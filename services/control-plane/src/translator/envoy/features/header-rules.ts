import type { ProtoObject } from '../../../resources.js';
import type { ServiceIR } from '../../ir.js';
import type { Feature } from '../feature.js';

type Rules = ServiceIR['headers']['request'];

function additions(rules: Rules): ProtoObject[] {
  return rules.add.map((header) => ({
    header: { key: header.name.toLowerCase(), value: header.value },
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  }));
}

/**
 * The tenant's request and response header rules, on its virtual host. The spec already
 * refuses hop-by-hop, x-forwarded-*, x-envoy-* and the router's own headers, and values with
 * Envoy's `%` substitutions; the router's forwarding headers are set on the route configuration,
 * which Envoy applies after the virtual host's. gRPC clients have no header rewriting.
 */
export const headerRules: Feature = {
  name: 'header-rules',
  // Envoy's default (OVERWRITE) sets `server: envoy` after the virtual host's rules ran, so a
  // rule removing or setting Server had no effect. Passed through, the header is the instance's
  // unless a rule says otherwise, and Envoy adds none of its own.
  connectionManager(hcm) {
    hcm.server_header_transformation = 'PASS_THROUGH';
  },
  virtualHost(virtualHost, service, { group }) {
    if (group !== 'envoy') return;
    const { request, response } = service.headers;
    if (request.add.length > 0) virtualHost.request_headers_to_add = additions(request);
    if (request.remove.length > 0) virtualHost.request_headers_to_remove = request.remove.map((name) => name.toLowerCase());
    if (response.add.length > 0) virtualHost.response_headers_to_add = additions(response);
    if (response.remove.length > 0) virtualHost.response_headers_to_remove = response.remove.map((name) => name.toLowerCase());
  },
};
