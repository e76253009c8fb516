/**
 * Provider references: what is written is read back (an empty value reads as none, the later of two writes of one
 * key wins), and the calls of many blogs made at once share statements instead of taking a connection each (with
 * hundreds of blogs in flight, one statement per call made them queue for the pool: issue #15); and, fenced, a write
 * lands only from the store's current tenure (issue #18): owner and epoch checked under the lease row's lock, and the
 * stage call that writes still running.
 */
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/db/pg.client';
import { createBlogRepo } from '../../src/db/blog.repo';
import { ConflictError } from '../../src/errors';
import { createLeaseRepo } from '../../src/db/lease.repo';
import { createRefsRepo } from '../../src/db/refs.repo';
import * as schema from '../../src/db/schema';
import { newBlog } from '../support/blog.rows';
import { databaseDrivers } from '../support/drivers';
import { requirePostgres } from '../support/servers';

const postgres = await requirePostgres();
const owner = (blogId: string, instanceId = 'store-1') => ({ blogId, instanceId });
afterAll(async () => {
  await postgres?.drop();
});

describe.each(databaseDrivers(postgres))('provider refs on $name', (driver) => {
  it.skipIf(!driver.available)('reads back what was written, for many blogs at once', async () => {
    const database = await driver.open();
    try {
      await database.migrate();
      const refs = createRefsRepo(database.db);
      const ids = Array.from({ length: 200 }, (_, i) => `b${i}`);
      await Promise.all(ids.map((id) => refs.put(owner(id), 'k', `v-${id}`)));
      await Promise.all([refs.put(owner('b0'), 'other', 'first'), refs.put(owner('b0'), 'other', 'second')]);
      await refs.put(owner('b1'), 'k', ''); // cleared
      const read = await Promise.all(ids.map((id) => refs.get(id, 'k')));
      expect(read.slice(2)).toEqual(ids.slice(2).map((id) => `v-${id}`));
      expect(read[0]).toBe('v-b0');
      expect(read[1]).toBeUndefined();
      expect(await refs.get('b0', 'other')).toBe('second');
      expect(await refs.get('nobody', 'k')).toBeUndefined();
    } finally {
      await database.close();
    }
  });
});

describe.skipIf(postgres === undefined)('provider refs under load (PostgreSQL)', () => {
  it('shares statements between the blogs calling at once: 200 writes and 200 reads take a few connections', async () => {
    const migrated = openPostgres(postgres!.url, () => undefined);
    await migrated.migrate();
    await migrated.close();
    const pool = new pg.Pool({ connectionString: postgres!.url, max: 10 });
    let checkouts = 0;
    pool.on('acquire', () => checkouts++);
    try {
      const refs = createRefsRepo(drizzle(pool, { schema }));
      const ids = Array.from({ length: 200 }, (_, i) => `load${i}`);
      await Promise.all(ids.map((id) => refs.put(owner(id), 'k', id)));
      await Promise.all(ids.map((id) => refs.get(id, 'k')));
      expect(checkouts).toBeLessThanOrEqual(4);
    } finally {
      await pool.end();
    }
  });
});

describe.skipIf(postgres === undefined)('fenced provider refs (PostgreSQL)', () => {
  it('writes only for the store’s current tenure: epoch checked, a stopped call refused, another store refused', async () => {
    const database = openPostgres(postgres!.url, () => undefined);
    try {
      await database.migrate();
      const leases = createLeaseRepo(database.db, 'node-a', 60_000);
      expect(await leases.claim('fenced-1')).toMatchObject({ held: true, epoch: 1 });
      const blogs = createBlogRepo(database.db, 'node-a');
      await blogs.insert(newBlog('rb', 'fenced-1'));
      let epoch: number | undefined = 1;
      const refs = createRefsRepo(database.db, { owner: 'node-a', epochOf: () => epoch });
      const mine = owner('rb', 'fenced-1');
      await refs.put(mine, 'k', 'first');
      expect(await refs.get('rb', 'k')).toBe('first');

      // The stage call ended (its actor stopped when the store was lost): refused, nothing written.
      const stopped = new AbortController();
      stopped.abort();
      await expect(refs.put({ ...mine, signal: stopped.signal }, 'k', 'late')).rejects.toBeInstanceOf(ConflictError);
      // Claimed as another store's blog (a store this process does not hold): refused.
      await expect(refs.put(owner('rb', 'fenced-other'), 'k', 'other store')).rejects.toBeInstanceOf(ConflictError);

      // The store was given back and taken again by the same owner: the lease row is at epoch 2.
      await leases.release(['fenced-1']);
      expect(await leases.claim('fenced-1')).toMatchObject({ held: true, epoch: 2 });
      // A write that names the old tenure's epoch is refused though the owner's name matches.
      await expect(refs.put(mine, 'k', 'old tenure')).rejects.toBeInstanceOf(ConflictError);
      expect(await refs.get('rb', 'k')).toBe('first');
      epoch = 2;
      await refs.put(mine, 'k', 'new tenure');
      expect(await refs.get('rb', 'k')).toBe('new tenure');
      // Not held here at all: refused.
      epoch = undefined;
      await expect(refs.put(mine, 'k', 'not held')).rejects.toBeInstanceOf(ConflictError);
      expect(await refs.get('rb', 'k')).toBe('new tenure');
    } finally {
      await database.close();
    }
  });
});
