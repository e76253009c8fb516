/** The database port: Drizzle over either driver, plus what differs between them. */
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema';

/** Drizzle over PostgreSQL (node-postgres) or PGlite; both speak the same SQL. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** An open database: Drizzle, its driver's name, migration and shutdown. */
export interface Database {
  readonly db: Db;
  readonly driver: 'pg' | 'pglite';
  /** Applies `drizzle/` migrations, serialized across processes. */
  migrate(): Promise<void>;
  /** Opens the connections the process will use (a pool fills up front); optional. */
  warm?(): Promise<void>;
  /** Cheap round trip for `/healthz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where the generated migrations live, whatever the working directory. */
export const MIGRATIONS_FOLDER = new URL('../../drizzle', import.meta.url).pathname;

/** `rows` of a raw `db.execute`, which the two drivers shape alike. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}
