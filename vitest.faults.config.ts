import { defineConfig } from 'vitest/config';

// Fault tests restart the shared PostgreSQL and nats-server and measure memory: one file at a time, alone.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
