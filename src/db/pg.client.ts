/** PostgreSQL through node-postgres: a pool for work, one dedicated client to migrate under an advisory lock. */
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import * as schema from './schema';
import { MIGRATIONS_FOLDER, type Database, type Db } from './database';

/** Arbitrary, fixed: the advisory lock key that serializes migrations of every Inkwell process. */
const MIGRATION_LOCK_KEY = 0x1e4b_3e11;

/** Opens a pool on `url`; pool errors (a restarted server) are reported, not fatal. */
export function openPostgres(url: string, onError: (err: Error) => void, max = 10): Database {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000 });
  pool.on('error', onError);
  // The pool listens for errors of idle clients only. A client checked out but between queries (a transaction
  // awaiting something else, e.g. the relay publishing to NATS) that loses its server would emit an unhandled
  // 'error' and crash the process: report it instead; its next query fails and the pool drops it on release.
  pool.on('connect', (client) => client.on('error', onError));
  const db = drizzle(pool, { schema }) as unknown as Db;
  return {
    db,
    driver: 'pg',
    async migrate() {
      const client = new pg.Client({ connectionString: url });
      client.on('error', onError);
      await client.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS_FOLDER });
      } finally {
        await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
        await client.end();
      }
    },
    async warm() {
      // Opens every pool connection now, so the first burst of commands does not wait for connection set-up.
      const clients = await Promise.all(Array.from({ length: max }, () => pool.connect()));
      clients.forEach((c) => c.release());
    },
    async ping() {
      await db.execute(sql`select 1`);
    },
    close: () => pool.end(),
  };
}
