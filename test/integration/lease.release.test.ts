/**
 * An idle store given back while a command for it arrives (issue 18), needs PostgreSQL. The lease manager gives a
 * store back once it has had nothing to do for a tick; the release statement takes a round trip. A command that
 * claims the store in that window must wait for the release and claim after it (a new tenure, a new epoch): claimed
 * before it, the row (still this process's, same epoch) was taken again at that epoch, and then the release
 * cleared it, leaving a shard here that the database says nobody holds.
 */
import { expect, it, vi } from 'vitest';
import { sql } from 'drizzle-orm';
import { rowsOf, type Database } from '../../src/db/database';
import { createLeaseRepo, type LeaseRepo } from '../../src/db/lease.repo';
import { openPostgres } from '../../src/db/pg.client';
import type { Logger } from '../../src/logger';
import { createLeaseManager } from '../../src/runtime/leases';
import { createShards } from '../../src/runtime/store.shard';
import { describeWithPostgres } from '../support/servers';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
const TTL = 3_000;

await describeWithPostgres('giving an idle store back (needs PostgreSQL)', (pg) => {
  it('a claim that arrives during the release waits for it and takes the store at a new epoch', async () => {
    const database: Database = openPostgres(pg().url, () => undefined, 4);
    try {
      await database.migrate();
      const real = createLeaseRepo(database.db, 'node-a', TTL);
      let releaseStarted!: () => void;
      const started = new Promise<void>((resolve) => (releaseStarted = resolve));
      let finishRelease!: () => void;
      const gate = new Promise<void>((resolve) => (finishRelease = resolve));
      const slowRelease: LeaseRepo = {
        ...real,
        claim: (id) => real.claim(id),
        claimMany: (ids) => real.claimMany(ids),
        release: async (ids) => {
          releaseStarted();
          await gate; // the release statement's round trip, made long
          await real.release(ids);
        },
      };
      let clock = Date.now();
      const shards = createShards({ ttlMs: TTL, now: () => clock });
      let ticks = 0;
      const leases = createLeaseManager({
        repo: slowRelease,
        supervisor: { rehydrateStores: async () => new Map(), dropStore: () => 0, load: async () => undefined },
        log: quiet,
        ttlMs: TTL,
        shards,
        now: () => clock,
        onChange: () => ticks++,
      });
      expect(await leases.ensure('idle-1')).toEqual({ mine: true });
      expect(shards.get('idle-1')?.epoch).toBe(1);

      leases.kick(); // the store has nothing to do: idle from now
      await vi.waitFor(() => expect(ticks).toBeGreaterThanOrEqual(2));
      clock += TTL; // a tick later: given back
      leases.kick();
      await started;
      expect(shards.has('idle-1')).toBe(false);
      const claimed = leases.ensure('idle-1'); // a command for the store, while the release is in flight
      await new Promise((resolve) => setTimeout(resolve, 100));
      finishRelease();
      expect(await claimed).toEqual({ mine: true });
      await leases.stop();

      const [row] = rowsOf<{ owner: string | null; epoch: number }>(
        await database.db.execute(sql`select owner, epoch from store_leases where instance_id = 'idle-1'`),
      );
      expect(row).toEqual({ owner: 'node-a', epoch: 2 });
      expect(shards.get('idle-1')?.epoch).toBe(2);
    } finally {
      await database.close();
    }
  }, 20_000);
});
