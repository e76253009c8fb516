/**
 * Chaos, short form (needs PostgreSQL and NATS): two processes, one killed with SIGKILL every few seconds and
 * restarted; afterwards every blog is DONE, published once, and no blog's event seq has a gap.
 * The long form is `npm run chaos` (200 blogs, a kill every 3 s for a minute).
 */
import { expect, it } from 'vitest';
import { runChaos } from '../support/chaos';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();

await describeWithPostgres(
  'chaos: SIGKILL every few seconds across two processes (needs PostgreSQL and NATS)',
  (db) => {
    it.skipIf(!nats)(
      'finishes every blog exactly once with gap-free events',
      async () => {
        const report = await runChaos({
          databaseUrl: db().url,
          natsUrl: nats!.url,
          prefix: nats!.prefix,
          blogs: 60,
          stores: 6,
          durationMs: 20_000,
          killEveryMs: 3_000,
          minKills: 3,
          leaseTtlMs: 2_000,
          latencyScale: 5,
          settleTimeoutMs: 60_000,
          say: (line) => console.log(`[chaos] ${line}`),
        });
        console.log(`[chaos] ${JSON.stringify(report)}`);
        expect(report.kills).toBeGreaterThanOrEqual(3);
        expect(report.problems).toEqual([]);
      },
      180_000,
    );
  },
);
