/** Opens the database the configuration names: PostgreSQL when `DATABASE_URL` is set, else embedded PGlite. */
import path from 'node:path';
import type { Config } from '../config';
import { describeConnectionError } from '../errors';
import type { Logger } from '../logger';
import type { Database } from './database';
import { openPglite } from './pglite.client';
import { openPostgres } from './pg.client';

/** Opens (but does not migrate) the configured database. */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.DATABASE_URL) {
    return openPostgres(config.DATABASE_URL, (err) =>
      log.error({ err: describeConnectionError(err) }, 'postgres connection error'),
    );
  }
  const dir = path.join(config.dataDir, 'db');
  log.info({ dir }, 'DATABASE_URL is not set: using embedded PGlite');
  return openPglite(dir);
}
