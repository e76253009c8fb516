/**
 * The two database drivers a persistence test runs its cases on: embedded PGlite (in memory, always) and a real
 * PostgreSQL (a fresh database from `requirePostgres()`; unavailable when there is none, which the helper reported).
 */
import type { Database } from '../../src/db/database';
import { openPostgres } from '../../src/db/pg.client';
import { openPglite } from '../../src/db/pglite.client';
import type { PostgresHandle } from './servers';

/** One driver: `open()` gives a new connection to its database; `available` false means skip. */
export interface DatabaseDriver {
  name: string;
  driver: 'pglite' | 'pg';
  available: boolean;
  open(): Promise<Database>;
}

/** PGlite and, when `postgres` is there, PostgreSQL. */
export function databaseDrivers(postgres: PostgresHandle | undefined): DatabaseDriver[] {
  return [
    { name: 'PGlite (in memory)', driver: 'pglite', available: true, open: () => openPglite(undefined) },
    {
      name: 'PostgreSQL (needs a server)',
      driver: 'pg',
      available: postgres !== undefined,
      open: async () => openPostgres(postgres!.url, () => undefined),
    },
  ];
}
