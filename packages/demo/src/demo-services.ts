import { fileURLToPath } from 'node:url';

/** The demo `syctl up` creates: two tenants, an HTTP service and a gRPC service with a traffic split, run by the local provider. */
export interface DemoPlan {
  tenants: { name: string; domains: string[] }[];
  services: { tenant: string; name: string; spec: Record<string, unknown> }[];
}

const httpMain = fileURLToPath(new URL('./http-echo-main.js', import.meta.url));
const grpcMain = fileURLToPath(new URL('./grpc-echo-main.js', import.meta.url));

export function demoPlan(nodeBinary = process.execPath): DemoPlan {
  return {
    tenants: [
      { name: 'acme', domains: ['acme.test'] },
      { name: 'globex', domains: ['globex.test'] },
    ],
    services: [
      {
        tenant: 'acme',
        name: 'web',
        spec: {
          domains: ['web.acme.test'],
          protocol: 'http',
          healthCheck: { protocol: 'http', path: '/healthz', interval: '2s', timeout: '1s', unhealthyThreshold: 3 },
          scaling: { minInstances: 1, maxInstances: 5, maxConcurrency: 20 },
          revisions: [{ name: 'v1', command: [nodeBinary, httpMain], env: { REVISION: 'v1' } }],
        },
      },
      {
        tenant: 'globex',
        name: 'echo',
        spec: {
          domains: ['echo.globex.test'],
          protocol: 'grpc',
          healthCheck: { protocol: 'tcp', interval: '2s', timeout: '1s', unhealthyThreshold: 3 },
          scaling: { minInstances: 1, maxInstances: 8, maxConcurrency: 10, stableWindow: '20s', panicWindow: '2s' },
          revisions: [
            { name: 'blue', command: [nodeBinary, grpcMain], env: { REVISION: 'blue' } },
            { name: 'green', command: [nodeBinary, grpcMain], env: { REVISION: 'green' } },
          ],
          traffic: [
            { revision: 'blue', percent: 80 },
            { revision: 'green', percent: 20 },
          ],
        },
      },
    ],
  };
}
