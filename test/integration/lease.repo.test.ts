/**
 * Store leases in the database, on PGlite (always) and on a real PostgreSQL (skipped with a printed reason when there
 * is none, a failure under CI=true): claiming many stores in one statement gives the same answers as one by one.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database';
import { createLeaseRepo } from '../../src/db/lease.repo';
import { databaseDrivers } from '../support/drivers';
import { requirePostgres } from '../support/servers';

const postgres = await requirePostgres();
afterAll(async () => {
  await postgres?.drop();
});

const DRIVERS = databaseDrivers(postgres);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const driver of DRIVERS) {
  describe.skipIf(!driver.available)(`store leases on ${driver.name}`, () => {
    let database: Database;
    beforeAll(async () => {
      database = await driver.open();
      await database.migrate();
    });
    afterAll(async () => {
      await database?.close();
    });
    beforeEach(async () => {
      await database.db.execute(sql`truncate store_leases`);
    });

    it('claims many stores in one go: new ones are held, held ones are reported with their owner', async () => {
      const a = createLeaseRepo(database.db, 'node-a', 60_000);
      const b = createLeaseRepo(database.db, 'node-b', 60_000);
      const first = await a.claimMany(['s1', 's2', 's1']);
      expect([...first.keys()].sort()).toEqual(['s1', 's2']);
      expect(first.get('s1')).toEqual({ held: true, takeover: true, epoch: 1 });
      // Again by the holder: still held, not a takeover.
      expect((await a.claimMany(['s1'])).get('s1')).toEqual({ held: true, takeover: false, epoch: 1 });
      // Another process: s1 and s2 are node-a's, s3 is free.
      const second = await b.claimMany(['s1', 's2', 's3']);
      expect(second.get('s1')).toEqual({ held: false, owner: 'node-a' });
      expect(second.get('s2')).toEqual({ held: false, owner: 'node-a' });
      expect(second.get('s3')).toEqual({ held: true, takeover: true, epoch: 1 });
      expect(await a.claimMany([])).toEqual(new Map());
    });

    it('takes over expired and released leases, and agrees with claim() one by one', async () => {
      const a = createLeaseRepo(database.db, 'node-a', 100);
      const b = createLeaseRepo(database.db, 'node-b', 60_000);
      await a.claimMany(['x', 'y', 'z']);
      await a.release(['z']);
      expect(await b.claim('x')).toEqual({ held: false, owner: 'node-a' });
      expect((await b.claimMany(['z'])).get('z')).toEqual({ held: true, takeover: true, epoch: 2 });
      await sleep(150); // node-a's leases expire
      const taken = await b.claimMany(['x', 'y']);
      expect(taken.get('x')).toEqual({ held: true, takeover: true, epoch: 2 });
      expect(taken.get('y')).toEqual({ held: true, takeover: true, epoch: 2 });
      expect(await a.renew(['x', 'y', 'z'])).toEqual(new Set());
      expect(await b.renew(['x', 'y', 'z', 'w'])).toEqual(new Set(['x', 'y', 'z']));
      // Only the listed leases are extended: an unlisted one of ours is left to expire.
      const c = createLeaseRepo(database.db, 'node-c', 1000);
      await c.claimMany(['p', 'q']);
      await sleep(600);
      expect(await c.renew(['p'])).toEqual(new Set(['p'])); // p now runs to ~1.6 s, q still ends at ~1 s
      await sleep(600);
      expect((await b.claimMany(['p', 'q'])).get('q')).toEqual({ held: true, takeover: true, epoch: 2 });
      expect((await b.claimMany(['p'])).get('p')).toEqual({ held: false, owner: 'node-c' });
    });
  });
}
