/** The selection of a bulk command: the blogs matching its filters that the command can move, in pages. */
import { sql, type SQL } from 'drizzle-orm';
import { FINAL_STATUSES, type BlogStatus, type Stage } from '../../machines/blog.types';
import { rowsOf, type Db } from './database';

/** The bulk commands and the statuses each one can move. */
export type BulkCommandName = 'retry' | 'cancel';

/**
 * What a bulk command selects blogs by, all ANDed (the body `intake/bulk.schema.ts` checks, without `dryRun`);
 * declared here so that db/ needs nothing from intake/.
 */
export interface BulkFilter {
  instanceId?: string;
  status?: BlogStatus;
  /** The error code of a `FAILED` blog. */
  code?: string;
  /** The stage a `FAILED` blog failed in, or the status a blog is working in. */
  stage?: Stage;
  /** ISO 8601 times. */
  createdAfter?: string;
  createdBefore?: string;
}

/** A blog a bulk command will send its command to. */
export interface BulkTarget {
  blogId: string;
  instanceId: string;
}

function conditions(name: BulkCommandName, f: BulkFilter): SQL {
  const parts: SQL[] = [
    // Only blogs the command applies to count as matched: retry moves FAILED blogs, cancel unfinished ones.
    name === 'retry'
      ? sql`status = 'FAILED'`
      : sql`status not in (${sql.join(
          FINAL_STATUSES.map((s) => sql`${s}`),
          sql`, `,
        )})`,
    sql`quarantined_at is null`,
  ];
  if (f.instanceId) parts.push(sql`instance_id = ${f.instanceId}`);
  if (f.status) parts.push(sql`status = ${f.status}`);
  if (f.code) parts.push(sql`(view->'error'->>'code') = ${f.code}`);
  if (f.stage) parts.push(sql`coalesce(view->'error'->>'stage', status) = ${f.stage}`);
  if (f.createdAfter) parts.push(sql`created_at > ${f.createdAfter}::timestamptz`);
  if (f.createdBefore) parts.push(sql`created_at < ${f.createdBefore}::timestamptz`);
  return sql.join(parts, sql` and `);
}

/** The port bulk commands select their blogs through (intake/bulk.ts). */
export interface BulkRepo {
  /** How many blogs `name` with filter `f` would move now. */
  count(name: BulkCommandName, f: BulkFilter): Promise<number>;
  /** The next `limit` matching blogs after `afterId`, by blog id (a keyset page: each blog is seen once). */
  page(name: BulkCommandName, f: BulkFilter, afterId: string, limit: number): Promise<BulkTarget[]>;
}

/** Creates the bulk selection queries over `db`. */
export function createBulkRepo(db: Db): BulkRepo {
  return {
    async count(name, f) {
      const [row] = rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from blogs where ${conditions(name, f)}`),
      );
      return row?.n ?? 0;
    },
    async page(name, f, afterId, limit) {
      return rowsOf<BulkTarget>(
        await db.execute(sql`
          select blog_id as "blogId", instance_id as "instanceId" from blogs
          where ${conditions(name, f)} and blog_id > ${afterId}
          order by blog_id limit ${limit}`),
      );
    },
  };
}
