import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['switchyard-source'] },
  ssr: { resolve: { conditions: ['switchyard-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Needs kube-apiserver and friends built from source: `pnpm test:kubernetes` (vitest.kubernetes.config.ts).
    exclude: ['**/node_modules/**', '**/dist/**', 'test/kubernetes/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real servers; two cores are shared by all of them.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default', 'json'],
    outputFile: { json: '.ci/results.json' },
  },
});
