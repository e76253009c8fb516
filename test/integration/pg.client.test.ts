/**
 * The PostgreSQL pool survives losing its server while a client is checked out between two queries (a transaction
 * awaiting something else, as the outbox relay does while it publishes to NATS): the error is reported, the
 * transaction fails, and the pool goes on with new connections. Without an error listener on checked-out clients
 * that error is an unhandled 'error' event, which kills the process (found by test/faults/restarts.test.ts).
 */
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { rowsOf } from '../../src/db/database';
import { openPostgres } from '../../src/db/pg.client';
import { describeWithPostgres } from '../support/servers';

await describeWithPostgres('PostgreSQL pool (needs PostgreSQL)', (db) => {
  it('reports a checked-out client losing its server, fails its transaction, and keeps working', async () => {
    const errors: Error[] = [];
    const database = openPostgres(db().url, (err) => errors.push(err), 2);
    const admin = new pg.Client({ connectionString: db().url });
    await admin.connect();
    try {
      const transaction = database.db.transaction(async (tx) => {
        const [row] = rowsOf<{ pid: number }>(await tx.execute(sql`select pg_backend_pid() as pid`));
        // Idle in the transaction, as the relay is while it publishes: now the server goes away under it.
        await admin.query('select pg_terminate_backend($1)', [row!.pid]);
        const deadline = Date.now() + 5_000;
        while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await tx.execute(sql`select 1`);
      });
      await expect(transaction).rejects.toThrow();
      expect(errors.map((e) => e.message).join('\n')).toMatch(/terminat/);
      await database.ping(); // a fresh connection answers
    } finally {
      await admin.end();
      await database.close();
    }
  });
});
