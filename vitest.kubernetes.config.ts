import { defineConfig } from 'vitest/config';

/** `pnpm test:kubernetes`: the kubernetes provider against a real kube-apiserver (built by scripts/kube-binaries.sh). */
export default defineConfig({
  resolve: { conditions: ['switchyard-source'] },
  ssr: { resolve: { conditions: ['switchyard-source'] } },
  test: {
    include: ['test/kubernetes/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: '.ci/results-kubernetes.json' },
  },
});
