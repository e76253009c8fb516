/** The outbox: status events committed with their transitions, waiting to be relayed to the bus. */
import { eq, sql } from 'drizzle-orm';
import { outbox } from './schema';
import { rowsOf, type Db } from './database';

/** An outbox row as read back. */
export type OutboxRow = typeof outbox.$inferSelect;

/** The relay's position, as a row subquery: (transaction id, event id). */
const CURSOR = sql`select tx, last_id from outbox_cursor where id = 1`;

/** Arbitrary, fixed: the advisory lock that makes one relay at a time publish, keeping per-blog order. */
const RELAY_LOCK_KEY = 0x1e4b_0b0c;

/**
 * What `relay` reads of an event: its transaction, as text, is where the cursor moves to. `settled`: its
 * transaction is older than every transaction still running, so the cursor may move past it. `ageMs`: how long ago
 * its row was written (by the database's clock).
 */
export type RelayRow = Pick<OutboxRow, 'id' | 'blogId' | 'instanceId' | 'seq' | 'payload' | 'tx'> & {
  settled: boolean;
  ageMs: number;
};

/** The outbox as the relay and the dashboard use it (implemented over PostgreSQL by `createOutboxRepo`). */
export interface OutboxRepo {
  /** Hands the oldest unsent events to `publish`, moves the cursor; -1 when another process holds the relay lock. */
  relay(limit: number, publish: (rows: RelayRow[]) => Promise<number>, skip?: readonly string[]): Promise<number>;
  /** Events not yet published. */
  backlog(): Promise<number>;
  /** A blog's events still in the outbox, in `seq` order. */
  forBlog(blogId: string): Promise<OutboxRow[]>;
  /** Deletes published events written before `before`. */
  prune(before: Date): Promise<void>;
}

/**
 * Creates the repository over `db`.
 *
 * Nothing marks an event sent: the relay keeps one cursor, a (transaction id, event id) pair, and reads events after
 * it in that order. An event id is taken when the event is written, not when it commits, so a transaction can
 * commit an event with a lower id after one with a higher id was relayed; its transaction id, though, is still
 * running when the cursor passes it by id. So the cursor moves only past events of transactions older than every
 * transaction still running (`settled`); the events of younger committed transactions are handed out too, so that
 * they need not wait for unrelated transactions to end, and the caller remembers what it sent ahead of the cursor.
 * One row update per relay run instead of one per event.
 */
export function createOutboxRepo(db: Db): OutboxRepo {
  /**
   * Rows after the cursor, each marked settled or not against the xmin of the statement's own snapshot, leaving out
   * the unsettled ones of `skip`, `Nats-Msg-Id`s `<blogId>:<seq>` (sent ahead: read again only once settled, for the cursor to pass
   * them). The cursor is a row subquery, evaluated once, so the comparison is a range of `outbox_relay_idx` (as a
   * join it is not).
   */
  const after = (limit: number, skip: readonly string[]) => sql`
    select o.id, o.blog_id as "blogId", o.instance_id as "instanceId", o.seq, o.payload, o.tx::text as tx,
      o.tx < pg_snapshot_xmin(pg_current_snapshot()) as settled,
      (extract(epoch from clock_timestamp() - o.created_at) * 1000)::float8 as "ageMs"
    from outbox o
    where (o.tx, o.id) > (${CURSOR})
      ${skip.length > 0 ? sql`and (o.tx < pg_snapshot_xmin(pg_current_snapshot()) or o.blog_id || ':' || o.seq not in (select value from json_array_elements_text(${JSON.stringify(skip)}::json)))` : sql``}
    order by o.tx, o.id
    limit ${limit}`;
  return {
    /**
     * Hands the oldest events after the cursor to `publish` in (transaction, id) order, which is `seq` order per
     * blog, and moves the cursor past the settled ones among the first `published` of them (`publish`'s answer),
     * all while holding the relay lock. Returns `published`, or -1 when another process holds the lock.
     */
    async relay(
      limit: number,
      publish: (rows: RelayRow[]) => Promise<number>,
      skip: readonly string[] = [],
    ): Promise<number> {
      return db.transaction(async (tx) => {
        const [lock] = rowsOf<{ locked: boolean }>(
          // The cursor's move need not wait for the disk: if a crash loses it, events go out again, which
          // delivery at least once allows (the stream deduplicates them by Nats-Msg-Id).
          await tx.execute(sql`select pg_try_advisory_xact_lock(${RELAY_LOCK_KEY}) as locked,
            set_config('synchronous_commit', 'off', true)`),
        );
        if (!lock?.locked) return -1;
        const rows = rowsOf<RelayRow>(await tx.execute(after(limit, skip)));
        for (const row of rows) row.id = Number(row.id); // bigint arrives as text from pg
        if (rows.length === 0) return 0;
        const sent = await publish(rows);
        // Settled rows come first (they are ordered by transaction id): the last settled one sent.
        const last = rows.slice(0, sent).findLast((row) => row.settled);
        if (last) {
          await tx.execute(sql`update outbox_cursor set tx = ${last.tx}::xid8, last_id = ${last.id} where id = 1`);
        }
        return sent;
      });
    },
    /** Events not yet published, for metrics (outbox lag). */
    async backlog(): Promise<number> {
      const [row] = rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from outbox o where (o.tx, o.id) > (${CURSOR})`),
      );
      return row?.n ?? 0;
    },
    /** A blog's events still in the outbox (the last day's), in `seq` order: the dashboard's timeline. */
    async forBlog(blogId: string): Promise<OutboxRow[]> {
      return db.select().from(outbox).where(eq(outbox.blogId, blogId)).orderBy(outbox.seq);
    },
    /** Deletes published events written before `before`: they live on in the events stream. */
    async prune(before: Date): Promise<void> {
      await db.execute(sql`
        delete from outbox o
        where o.created_at < ${before.toISOString()}::timestamptz and (o.tx, o.id) <= (${CURSOR})`);
    },
  };
}
