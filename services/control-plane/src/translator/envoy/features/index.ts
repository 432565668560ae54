import type { Feature } from '../feature.js';
import { accessLog } from './access-log.js';
import { activatorRouting } from './activator-headers.js';
import { circuitBreakers } from './circuit-breakers.js';
import { envoyHeaders } from './envoy-headers.js';
import { headerRules } from './header-rules.js';
import { healthChecks } from './health-checks.js';
import { loadBalancing } from './load-balancing.js';
import { loadReporting } from './load-reporting.js';
import { localRateLimit } from './local-rate-limit.js';
import { outlierDetection } from './outlier-detection.js';
import { retries } from './retries.js';
import { timeouts } from './timeouts.js';
import { tracing } from './tracing.js';
import { upstreamProtocol } from './upstream-protocol.js';

/** Every feature, in the order their HTTP filters run (the router always comes last). */
export const features: readonly Feature[] = [
  envoyHeaders,
  accessLog,
  tracing,
  localRateLimit,
  headerRules,
  timeouts,
  activatorRouting,
  retries,
  loadBalancing,
  upstreamProtocol,
  circuitBreakers,
  outlierDetection,
  healthChecks,
  loadReporting,
];
