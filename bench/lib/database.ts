/** A fresh PostgreSQL database per scenario: created with a random name, dropped (with force) afterwards. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Where the benchmarks find the server; a fresh database is made on it. */
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database that exists until `drop()`. */
export interface FreshDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Creates `inkwell_bench_<random>` on the server of `adminUrl`. */
export async function createFreshDatabase(adminUrl = ADMIN_URL): Promise<FreshDatabase> {
  const name = `inkwell_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Runs `fn` with a fresh database and always drops it. */
export async function withFreshDatabase<T>(fn: (db: FreshDatabase) => Promise<T>): Promise<T> {
  const db = await createFreshDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}
