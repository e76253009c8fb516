/** The outbox: status events committed with their transitions, waiting to be relayed to the bus. */
import { and, eq, isNull, isNotNull, lt, sql } from 'drizzle-orm';
import { outbox } from './schema';
import { rowsOf, type Db } from './database';

/** An outbox row as read back. */
export type OutboxRow = typeof outbox.$inferSelect;

/** Arbitrary, fixed: the advisory lock that makes one relay at a time publish, keeping per-blog order. */
const RELAY_LOCK_KEY = 0x1e4b_0b0c;

/** Creates the repository over `db`. */
export function createOutboxRepo(db: Db) {
  return {
    /**
     * Hands the oldest unpublished events to `publish` in id order (which is `seq` order per blog) and marks the
     * first `published` of them as sent, all while holding the relay lock. Returns how many were sent, or -1
     * when another process holds the lock.
     */
    async relay(limit: number, publish: (rows: OutboxRow[]) => Promise<number>): Promise<number> {
      return db.transaction(async (tx) => {
        const [lock] = rowsOf<{ locked: boolean }>(
          await tx.execute(sql`select pg_try_advisory_xact_lock(${RELAY_LOCK_KEY}) as locked`),
        );
        if (!lock?.locked) return -1;
        const rows = await tx.select().from(outbox).where(isNull(outbox.publishedAt)).orderBy(outbox.id).limit(limit);
        if (rows.length === 0) return 0;
        const sent = await publish(rows);
        if (sent > 0) {
          // One array parameter rather than one parameter per id: building a 500-parameter query costs more CPU.
          const ids = `{${rows
            .slice(0, sent)
            .map((r) => r.id)
            .join(',')}}`;
          await tx
            .update(outbox)
            .set({ publishedAt: new Date() })
            .where(sql`${outbox.id} = any(${ids}::bigint[])`);
        }
        return sent;
      });
    },
    /** Events not yet published, for metrics (outbox lag). */
    async backlog(): Promise<number> {
      const [row] = rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from outbox where published_at is null`),
      );
      return row?.n ?? 0;
    },
    /** A blog's events still in the outbox (the last day's), in `seq` order: the dashboard's timeline. */
    async forBlog(blogId: string): Promise<OutboxRow[]> {
      return db.select().from(outbox).where(eq(outbox.blogId, blogId)).orderBy(outbox.seq);
    },
    /** Deletes events published before `before`: they live on in the events stream. */
    async prune(before: Date): Promise<void> {
      await db.delete(outbox).where(and(isNotNull(outbox.publishedAt), lt(outbox.publishedAt, before)));
    },
  };
}

/** The outbox repository's interface. */
export type OutboxRepo = ReturnType<typeof createOutboxRepo>;
