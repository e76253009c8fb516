/**
 * Retention: ended blogs (DONE, CANCELLED) last changed before a cutoff keep their row and public view, and lose
 * their snapshot, their events still in the outbox (only published ones) and their provider refs. One batch is one
 * short statement over the oldest unpruned ended blogs (a partial index holds exactly those), skipping rows another
 * transaction holds, so it never waits on a lock nor holds many for long.
 */
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './database';

/** What one batch removed. */
export interface PrunedCounts {
  blogs: number;
  events: number;
  refs: number;
}

/** The port retention prunes through (runtime/retention.ts). */
export interface RetentionRepo {
  /** Prunes up to `limit` ended blogs last updated before `cutoff`. */
  pruneBatch(cutoff: Date, limit: number): Promise<PrunedCounts>;
}

/** Creates the retention queries over `db`. */
export function createRetentionRepo(db: Db): RetentionRepo {
  return {
    async pruneBatch(cutoff, limit) {
      const [row] = rowsOf<PrunedCounts>(
        await db.execute(sql`
          with b as (
            select blog_id from blogs
            where status in ('DONE', 'CANCELLED') and pruned_at is null and updated_at < ${cutoff.toISOString()}::timestamptz
            order by updated_at, blog_id limit ${limit}
            for update skip locked),
          u as (
            update blogs x set snapshot = 'null'::json, pruned_at = now(), version = x.version + 1
            from b where x.blog_id = b.blog_id
            returning x.blog_id),
          e as (
            delete from outbox o using u
            where o.blog_id = u.blog_id and (o.tx, o.id) <= (select tx, last_id from outbox_cursor where id = 1)
            returning 1),
          r as (delete from provider_refs p using u where p.blog_id = u.blog_id returning 1)
          select (select count(*)::int from u) as blogs, (select count(*)::int from e) as events,
            (select count(*)::int from r) as refs`),
      );
      return row ?? { blogs: 0, events: 0, refs: 0 };
    },
  };
}
