import { Counter, type Registry } from 'prom-client';

/**
 * A counter on `registry`, reusing the one already there: a host may open the store or the API
 * more than once on one registry (tests, restarts), and prom-client refuses duplicate names.
 */
export function registryCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}
