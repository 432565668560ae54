import { clusterName, type EndpointSet, type ServiceRecord, type TenantRecord } from '@switchyard/shared';
import { translate, type DesiredState } from '../src/translator/index.js';

/**
 * Times full translations of a large desired state: the first one (every record checked), then
 * repeated ones after an endpoint-set change (records already known). Prints one JSON line.
 * Usage: node dist/bench/translator-bench.js [services=5000] [runs=10]
 */
const serviceCount = Number(process.argv[2] ?? 5000);
const runs = Number(process.argv[3] ?? 10);
const servicesPerTenant = 25;

const tenants: TenantRecord[] = [];
const services: ServiceRecord[] = [];
const endpointSets = new Map<string, EndpointSet>();
for (let i = 0; i < serviceCount; i++) {
  const tenant = `t${Math.floor(i / servicesPerTenant)}`;
  if (i % servicesPerTenant === 0) tenants.push({ schemaVersion: 1, name: tenant, spec: { domains: [`${tenant}.test`] }, updatedAt: 0 });
  const name = `s${i % servicesPerTenant}`;
  services.push({
    schemaVersion: 1,
    tenant,
    name,
    updatedAt: i,
    spec: {
      domains: [`${name}.${tenant}.test`],
      protocol: i % 2 === 0 ? 'http' : 'grpc',
      routes: [{ match: { regex: '/items/[0-9]+' } }, { match: { prefix: '/' } }],
      revisions: [
        { name: 'blue', command: './server' },
        { name: 'green', command: './server' },
      ],
      traffic: [
        { revision: 'blue', percent: 90 },
        { revision: 'green', percent: 10 },
      ],
    } as unknown as ServiceRecord['spec'],
  });
  for (const revision of ['blue', 'green']) {
    const ref = { tenant, service: name, revision };
    const endpoints = [1, 2, 3].map((n) => ({
      id: `i${n}`,
      address: `10.${(i >> 8) & 255}.${i & 255}.${n}`,
      port: 8080,
      state: 'ready' as const,
    }));
    endpointSets.set(clusterName(ref), { schemaVersion: 1, ...ref, generation: 1, endpoints, ts: 0 });
  }
}

const state: DesiredState = { tenants, services, endpointSets, health: new Map(), now: 0 };
const time = (s: DesiredState) => {
  const start = performance.now();
  const result = translate(s);
  if (result.errors.length > 0) throw new Error(`unexpected errors: ${JSON.stringify(result.errors.slice(0, 3))}`);
  return performance.now() - start;
};

const firstMs = time(state);
const warm: number[] = [];
for (let run = 0; run < runs; run++) {
  const changed = new Map(endpointSets);
  const key = clusterName({ tenant: 't0', service: 's0', revision: 'blue' });
  const set = endpointSets.get(key) as EndpointSet;
  changed.set(key, { ...set, generation: set.generation + run + 1, endpoints: set.endpoints.slice(0, 2) });
  warm.push(time({ ...state, endpointSets: changed }));
}
warm.sort((a, b) => a - b);
const round = (ms: number) => Math.round(ms * 10) / 10;
console.log(
  JSON.stringify({
    bench: 'translator',
    services: serviceCount,
    clusters: serviceCount * 2,
    firstMs: round(firstMs),
    afterEndpointChangeMedianMs: round(warm[Math.floor(warm.length / 2)] as number),
    afterEndpointChangeMaxMs: round(warm.at(-1) as number),
    heapMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  }),
);
