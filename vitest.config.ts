import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // one line naming the outside tools this machine lacks (test/tools.ts)
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // native kernels use their own threads; two vitest workers match CI's two cores
    pool: 'forks',
    maxWorkers: 2,
    // the second names every skipped suite and what it needs (test/skip-reporter.ts)
    reporters: ['default', './test/skip-reporter.ts'],
  },
});
