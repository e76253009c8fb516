/**
 * Provider references: what is written is read back (an empty value reads as none, the later of two writes of one
 * key wins), and the calls of many blogs made at once share statements instead of taking a connection each (with
 * hundreds of blogs in flight, one statement per call made them queue for the pool: issue #15).
 */
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/db/pg.client';
import { createRefsRepo } from '../../src/db/refs.repo';
import * as schema from '../../src/db/schema';
import { databaseDrivers } from '../support/drivers';
import { requirePostgres } from '../support/servers';

const postgres = await requirePostgres();
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
      await Promise.all(ids.map((id) => refs.put(id, 'k', `v-${id}`)));
      await Promise.all([refs.put('b0', 'other', 'first'), refs.put('b0', 'other', 'second')]);
      await refs.put('b1', 'k', ''); // cleared
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
      await Promise.all(ids.map((id) => refs.put(id, 'k', id)));
      await Promise.all(ids.map((id) => refs.get(id, 'k')));
      expect(checkouts).toBeLessThanOrEqual(4);
    } finally {
      await pool.end();
    }
  });
});
