/**
 * Blog rows over PostgreSQL (the `BlogRepo` port, `blog.port.ts`): create, commit transitions in batches, read for
 * the API and for rehydration; every write fenced by its store's lease.
 *
 * The fence on every write of a store's blogs: the write lands only if this process still holds the store's lease
 * at the epoch it took it with, and no takeover can commit between that check and the write's commit.
 *
 * Each fenced statement locks the lease rows it relies on `FOR KEY SHARE`, in `instance_id` order, checking owner
 * and epoch as it locks. `store_leases_epoch_key`, a unique index on (instance_id, epoch), makes `epoch` a key
 * column, so:
 * - a takeover (its UPDATE changes `epoch`, so it takes the row `FOR UPDATE`) waits for every fenced write that
 *   locked the row to commit or roll back, and a fenced write that comes after the takeover locked or committed the
 *   row waits for it and then, under READ COMMITTED, re-checks owner and epoch against the new row version (it no
 *   longer matches: the write changes nothing);
 * - a renewal (`expires_at` only: a `FOR NO KEY UPDATE`) and other fenced writes never wait for each other.
 * So a write either commits before the takeover does, which the new owner then reads, or it is refused.
 */
import { and, desc, eq, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import { blogs } from './schema';
import { rowsOf, type Db } from './database';
import { outboxNotice } from './outbox.notice';
import { LIVE_STATUSES, type BlogRepo, type BlogRow, type BlogWrite, type ListQuery, type NewBlog } from './blog.port';

export {
  LIVE_STATUSES,
  type BlogRepo,
  type BlogRow,
  type BlogWrite,
  type ListQuery,
  type NewBlog,
  type OutboxEvent,
} from './blog.port';

/** Who writes, and the epoch at which it holds each store (undefined: not held, so every write is refused). */
export interface Fence {
  owner: string;
  /** Without it only the owner is checked (still under the lock); with it, the epoch the holder took the store at. */
  epochOf?: (instanceId: string) => number | undefined;
}

/** A fence from a bare owner name (the old `fenceOwner` argument) or a fence. */
export const fenceOf = (fence: string | Fence | undefined): Fence | undefined =>
  typeof fence === 'string' ? { owner: fence } : fence;

/** A store a fenced statement writes, with the epoch it names (null: the owner alone is checked). */
export type HeldStore = { instance_id: string; epoch: number | null };

/** The epoch a write names: its own tenure's, else the fence's now (-1, refused, when the store is not held here). */
export const epochNamed = (fence: Fence, instanceId: string, epoch?: number): number | null =>
  epoch ?? (fence.epochOf ? (fence.epochOf(instanceId) ?? -1) : null);

/**
 * A `select instance_id, epoch` of the lease rows of `stores` that `fence`'s owner still holds at the epoch each
 * names, locked `FOR KEY SHARE` in `instance_id` order (a statement covering many stores takes its locks in the same
 * order as every other one). Put it in a `with f as materialized (...)` and keep only the rows whose store and epoch
 * it returns (`inHeldSql`). One store may be named at two epochs (writes of two tenures): only the current one passes.
 */
export function heldLeases(fence: Fence, stores: Iterable<HeldStore>): SQL {
  const pairs = new Map<string, HeldStore>();
  for (const s of stores) pairs.set(`${s.instance_id}\u0000${s.epoch}`, s);
  return sql`select l.instance_id, f.epoch from store_leases l
    join json_to_recordset(${JSON.stringify([...pairs.values()])}::json) as f(instance_id text, epoch int)
      on l.instance_id = f.instance_id
    where l.owner = ${fence.owner} and (f.epoch is null or l.epoch = f.epoch)
    order by l.instance_id
    for key share of l`;
}

/** `and` the row's store and named epoch are among those `f` (the `heldLeases` CTE) returned. */
export const inHeldSql = (instanceId: SQL, epoch: SQL): SQL =>
  sql`and exists (select 1 from f where f.instance_id = ${instanceId} and f.epoch is not distinct from ${epoch})`;

/** Deadlock detected: the statement was rolled back whole, so running it again is safe. */
export const isDeadlock = (error: unknown): boolean =>
  (error as { code?: unknown } | undefined)?.code === '40P01' ||
  (error as { cause?: { code?: unknown } } | undefined)?.cause?.code === '40P01';

/** Runs `statement`, again (up to 3 times) when PostgreSQL broke a deadlock by rolling it back. */
export async function retryDeadlocks<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (attempt >= 3 || !isDeadlock(error)) throw error;
    }
  }
}

/**
 * An outbox row's `created_at` is when the statement wrote it (`clock_timestamp()`, after the rows it depends on were
 * written; only the commit itself follows), not when the transaction started: the delay of its event to subscribers
 * is measured from there (bench/realpath.bench.ts), and retention prunes by it.
 *
 * Creates the repository over `db`. With a fence (or just its owner's name), every commit and every insert also
 * requires that this process still holds the blog's store lease (at the epoch it took it with, when the fence knows
 * it), checked under a lock no takeover can pass (`heldLeases` above): a process that lost its lease never writes that
 * store's blogs again. With `notify`, every outbox row a commit or an insert writes is also announced on that
 * PostgreSQL channel (`outbox.notice.ts`), delivered to its listener when the statement commits.
 */
export function createBlogRepo(db: Db, fencing?: string | Fence, notify?: string): BlogRepo {
  const fence = fenceOf(fencing);
  /** The epoch a write names, as sent with its row (null without a fence, or when only the owner is checked). */
  const epochFor = (instanceId: string, epoch?: number) => (fence ? epochNamed(fence, instanceId, epoch) : null);
  /** A CTE `f` of the stores (among `rows`) this process may write now at the epoch they name, rows locked. */
  const held = (rows: HeldStore[]) => (fence ? sql`f as materialized (${heldLeases(fence, rows)}),` : sql``);
  const inHeld = (instanceId: SQL, epoch: SQL) => (fence ? inHeldSql(instanceId, epoch) : sql``);
  /**
   * Inserts many new blogs and their first events in ONE statement (one round trip, atomic on its own); returns
   * the ids that were inserted (an id that exists already, or repeats in `list`, is skipped and changes nothing).
   * Blogs of stores the fence refuses are not inserted either; their ids are added to `fenced`.
   */
  async function insertMany(list: NewBlog[], fenced?: Set<string>): Promise<Set<string>> {
    const seen = new Set<string>();
    const rows: Array<Record<string, unknown> & { blog_id: string; instance_id: string; epoch: number | null }> = [];
    for (const b of list) {
      if (seen.has(b.blogId)) continue;
      seen.add(b.blogId);
      rows.push({
        blog_id: b.blogId,
        instance_id: b.instanceId,
        status: b.status,
        seq: b.event.seq,
        snapshot: b.snapshot,
        machine_version: b.machineVersion,
        view: b.view,
        created_at: b.createdAt.toISOString(),
        payload: b.event.payload,
        epoch: epochFor(b.instanceId, b.epoch),
      });
    }
    if (rows.length === 0) return new Set();
    const announce = outboxNotice(notify, 'o');
    const answer = rowsOf<{ blog_id: string | null; allowed: string | null; epoch: number | null }>(
      await retryDeadlocks(async () =>
        db.execute(sql`
          with ${held(rows)} v as (
            select * from json_to_recordset(${JSON.stringify(rows)}::json) as v(blog_id text, instance_id text,
              status text, seq int, snapshot json, machine_version int, view json, created_at timestamptz,
              payload json, epoch int)),
          b as (
            insert into blogs (blog_id, instance_id, status, seq, snapshot, machine_version, view, created_at,
              updated_at)
            select blog_id, instance_id, status, seq, snapshot, machine_version, view, created_at, created_at from v
            where true ${inHeld(sql`v.instance_id`, sql`v.epoch`)}
            on conflict (blog_id) do nothing
            returning blog_id),
          o as (
            insert into outbox (blog_id, instance_id, seq, payload, created_at)
            select v.blog_id, v.instance_id, v.seq, v.payload, clock_timestamp() from v join b on b.blog_id = v.blog_id
            returning blog_id, instance_id, seq, payload)${announce.cte}
          select blog_id, null as allowed, null as epoch from b
          ${fence ? sql`union all select null, instance_id, epoch from f` : sql``} ${announce.force}`),
      ),
    );
    const created = new Set(answer.flatMap((r) => (r.blog_id ? [r.blog_id] : [])));
    const allowed = new Set(answer.flatMap((r) => (r.allowed ? [`${r.allowed}\u0000${r.epoch}`] : [])));
    for (const r of rows) if (fence && !allowed.has(`${r.instance_id}\u0000${r.epoch}`)) fenced?.add(r.blog_id);
    return created;
  }

  const getByIds = db
    .select()
    .from(blogs)
    .where(sql`${blogs.blogId} = any(${sql.placeholder('blogIds')})`)
    .prepare('inkwell_blogs_by_ids');
  return {
    /** Inserts the blog and its first event; `false` when the id exists already (nothing changes then). */
    async insert(blog: NewBlog): Promise<boolean> {
      return (await insertMany([blog])).has(blog.blogId);
    },

    insertMany,

    /**
     * Commits many actors' transitions in ONE statement (so one round trip, atomic on its own): the fenced
     * update of every row whose version is still the expected one, and the outbox events of exactly those rows.
     * Returns the ids whose version had moved (another writer won): their writes and events are not applied.
     */
    async commit(writes: BlogWrite[]): Promise<Set<string>> {
      if (writes.length === 0) return new Set();
      const rows = writes.map((w) => ({
        blog_id: w.blogId,
        expected: w.expectedVersion,
        status: w.status,
        seq: w.seq,
        snapshot: w.snapshot,
        machine_version: w.machineVersion,
        view: w.view,
        wake_at: w.wakeAt?.toISOString() ?? null,
        instance_id: w.instanceId,
        epoch: epochFor(w.instanceId, w.epoch),
      }));
      const announce = outboxNotice(notify, 'e');
      const events = writes.flatMap((w) =>
        w.events.map((e) => ({ blog_id: w.blogId, instance_id: w.instanceId, seq: e.seq, payload: e.payload })),
      );
      const updated = rowsOf<{ blog_id: string | null }>(
        await retryDeadlocks(async () =>
          db.execute(sql`
          with ${held(rows)} u as (
            update blogs b set status = v.status, seq = v.seq, snapshot = v.snapshot, view = v.view,
              machine_version = v.machine_version, wake_at = v.wake_at, version = b.version + 1, updated_at = now()
            from json_to_recordset(${JSON.stringify(rows)}::json) as v(blog_id text, expected int, status text,
              seq int, snapshot json, machine_version int, view json, wake_at timestamptz, epoch int)
            where b.blog_id = v.blog_id and b.version = v.expected ${inHeld(sql`b.instance_id`, sql`v.epoch`)}
            returning b.blog_id),
          e as (
            insert into outbox (blog_id, instance_id, seq, payload, created_at)
            select e.blog_id, e.instance_id, e.seq, e.payload, clock_timestamp()
            from json_to_recordset(${JSON.stringify(events)}::json)
              as e(blog_id text, instance_id text, seq int, payload json)
            where e.blog_id in (select blog_id from u)
            on conflict (blog_id, seq) do nothing
            returning blog_id, instance_id, seq, payload)${announce.cte}
          select blog_id, null, null from u ${announce.force}`),
        ),
      );
      const applied = new Set(updated.flatMap((r) => (r.blog_id ? [r.blog_id] : [])));
      return new Set(writes.map((w) => w.blogId).filter((id) => !applied.has(id)));
    },

    /** One blog by id (the prepared statement of `getMany`). */
    async get(blogId: string): Promise<BlogRow | undefined> {
      const [row] = await getByIds.execute({ blogIds: [blogId] });
      return row;
    },

    /** The blogs of `blogIds` that exist, in no particular order: a prepared statement (built once), one round trip. */
    async getMany(blogIds: readonly string[]): Promise<BlogRow[]> {
      if (blogIds.length === 0) return [];
      return getByIds.execute({ blogIds: [...blogIds] });
    },

    /** Newest first, keyset-paged on (createdAt, blogId). */
    async list(q: ListQuery): Promise<BlogRow[]> {
      const conditions = [
        q.instanceId ? eq(blogs.instanceId, q.instanceId) : undefined,
        q.status ? eq(blogs.status, q.status) : undefined,
        q.cursor
          ? or(
              lt(blogs.createdAt, q.cursor.createdAt),
              and(eq(blogs.createdAt, q.cursor.createdAt), lt(blogs.blogId, q.cursor.blogId)),
            )
          : undefined,
      ];
      return db
        .select()
        .from(blogs)
        .where(and(...conditions))
        .orderBy(desc(blogs.createdAt), desc(blogs.blogId))
        .limit(q.limit);
    },

    /** How many blogs each store has in each status: the fleet registry's starting counts. */
    async countByStatus(): Promise<Array<{ instanceId: string; status: string; n: number }>> {
      return db
        .select({ instanceId: blogs.instanceId, status: blogs.status, n: sql<number>`count(*)::int` })
        .from(blogs)
        .groupBy(blogs.instanceId, blogs.status);
    },

    /** Stores' blogs that are working (or waiting for a working slot): what a new owner rehydrates. */
    async loadWorking(instanceIds: string[]): Promise<BlogRow[]> {
      if (instanceIds.length === 0) return [];
      return db
        .select()
        .from(blogs)
        .where(
          and(
            inArray(blogs.instanceId, instanceIds),
            inArray(blogs.status, [...LIVE_STATUSES]),
            isNull(blogs.quarantinedAt),
          ),
        )
        .orderBy(blogs.createdAt);
    },

    /** Blogs set aside because their snapshot cannot be restored. */
    async countQuarantined(): Promise<number> {
      const [row] = rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from blogs where quarantined_at is not null`),
      );
      return row?.n ?? 0;
    },

    /**
     * Marks a blog whose snapshot cannot be restored; it stays visible, and is never loaded again. Fenced like a
     * commit: a process that lost the store does not set aside a blog its new owner is advancing.
     */
    async quarantine(blogId: string, instanceId: string, reason: string): Promise<void> {
      const epoch = epochFor(instanceId);
      await retryDeadlocks(async () =>
        db.execute(sql`
          with ${held([{ instance_id: instanceId, epoch }])} v as (select ${epoch}::int as epoch)
          update blogs b set quarantined_at = now(), quarantine_reason = ${reason.slice(0, 2000)}
          from v where b.blog_id = ${blogId} and b.instance_id = ${instanceId} ${inHeld(sql`b.instance_id`, sql`v.epoch`)}`),
      );
    },
  };
}
