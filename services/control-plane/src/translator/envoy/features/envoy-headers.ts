import type { Feature } from '../feature.js';
import { EnvoyType, typed } from '../proto.js';

/**
 * Removes every `x-envoy-*` request header before any other filter runs. Envoy sanitizes only
 * the ones its router reads (`x-envoy-retry-on`, `x-envoy-upstream-rq-timeout-ms`…) and passes
 * any other name through, so a client could hand an instance an `x-envoy-…` header that looks
 * like the proxy's (CVE-2023-27487 was such a spoof). Envoy's own headers for the upstream are
 * added by the router, after this filter. Headers cannot be removed while Lua iterates them,
 * hence the two passes.
 */
const stripEnvoyHeaders = `function envoy_on_request(handle)
  local spoofed = {}
  for name, _ in pairs(handle:headers()) do
    if string.sub(name, 1, 8) == "x-envoy-" then spoofed[#spoofed + 1] = name end
  end
  for _, name in ipairs(spoofed) do handle:headers():remove(name) end
end
`;

/** Client-sent `x-envoy-*` headers never reach an instance. */
export const envoyHeaders: Feature = {
  name: 'envoy-headers',
  httpFilter: () => ({
    name: 'envoy.filters.http.lua',
    typed_config: typed(EnvoyType.Lua, { default_source_code: { inline_string: stripEnvoyHeaders }, stat_prefix: 'strip_envoy_headers' }),
  }),
};
