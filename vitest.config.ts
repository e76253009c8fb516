import { defineConfig } from 'vitest/config';

// Unit and integration tests run together; integration files find their servers through test/support/servers.ts.
// test/faults (server restarts, SIGKILL chaos, memory) runs afterwards with its own config, one file at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/faults/**', '**/node_modules/**'],
    // dist/ built once before the files that spawn `npm start` (it runs the compiled build).
    globalSetup: ['test/support/dist.setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
