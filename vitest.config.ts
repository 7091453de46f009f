import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // native kernels use their own threads; two vitest workers match CI's two cores
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
