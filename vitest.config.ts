import { defineConfig } from 'vitest/config';

// Unit and integration tests run together; integration files find their servers through test/support/servers.ts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
