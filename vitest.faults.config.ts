import { defineConfig } from 'vitest/config';

// Fault tests restart the shared PostgreSQL and nats-server and measure memory: one file at a time, alone.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    // dist/ built once before the files that spawn `npm start` (it runs the compiled build).
    globalSetup: ['test/support/dist.setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
