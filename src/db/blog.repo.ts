/** Blog rows: create, commit transitions in batches, read for the API and for rehydration. */
import { and, desc, eq, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import { WAITING_STATUSES, WORKING_STATUSES, type BlogStatus } from '../../machines/blog.types';
import { blogs } from './schema';
import { rowsOf, type Db } from './database';
import { fenceOf, heldLeases, retryDeadlocks, type Fence } from './fence';

/** A blog row as read back. */
export type BlogRow = typeof blogs.$inferSelect;

/** One status event as written to the outbox. */
export interface OutboxEvent {
  seq: number;
  payload: Record<string, unknown>;
}

/** A new blog: its first snapshot and its first event. */
export interface NewBlog {
  blogId: string;
  instanceId: string;
  status: string;
  snapshot: unknown;
  machineVersion: number;
  view: Record<string, unknown>;
  event: OutboxEvent;
  createdAt: Date;
}

/** One actor's latest state, fenced by the version it was read at. */
export interface BlogWrite {
  blogId: string;
  instanceId: string;
  expectedVersion: number;
  status: string;
  seq: number;
  snapshot: unknown;
  machineVersion: number;
  view: Record<string, unknown>;
  wakeAt: Date | null;
  events: OutboxEvent[];
}

/** Filters of the list endpoint; `cursor` is the opaque value of a previous page. */
export interface ListQuery {
  instanceId?: string;
  status?: string;
  limit: number;
  cursor?: { createdAt: Date; blogId: string };
}

/** Blogs a store's owner keeps in memory: working, or waiting for a working slot. */
export const LIVE_STATUSES: readonly BlogStatus[] = ['PENDING', ...WORKING_STATUSES];
/** Blogs that still have work or a timer. */
const ACTIVE = [...WAITING_STATUSES, ...WORKING_STATUSES];

/**
 * Creates the repository over `db`. With a fence (or just its owner's name), every commit and every insert also
 * requires that this process still holds the blog's store lease (at the epoch it took it with, when the fence knows
 * it), checked under a lock no takeover can pass (`fence.ts`): a process that lost its lease never writes that
 * store's blogs again.
 */
export function createBlogRepo(db: Db, fencing?: string | Fence) {
  const fence = fenceOf(fencing);
  /** A CTE `f` of the stores (among `instanceIds`) this process may write now, their lease rows locked. */
  const held = (instanceIds: Iterable<string>) =>
    fence ? sql`f as materialized (${heldLeases(fence, instanceIds)}),` : sql``;
  const inHeld = (column: SQL) => (fence ? sql`and ${column} in (select instance_id from f)` : sql``);
  /**
   * Inserts many new blogs and their first events in ONE statement (one round trip, atomic on its own); returns
   * the ids that were inserted (an id that exists already, or repeats in `list`, is skipped and changes nothing).
   * Blogs of stores the fence refuses are not inserted either; their ids are added to `fenced`.
   */
  async function insertMany(list: NewBlog[], fenced?: Set<string>): Promise<Set<string>> {
    const seen = new Set<string>();
    const rows: Array<Record<string, unknown> & { blog_id: string; instance_id: string }> = [];
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
      });
    }
    if (rows.length === 0) return new Set();
    const stores = new Set(rows.map((r) => r.instance_id));
    const answer = rowsOf<{ blog_id: string | null; allowed: string | null }>(
      await retryDeadlocks(async () =>
        db.execute(sql`
          with ${held(stores)} v as (
            select * from json_to_recordset(${JSON.stringify(rows)}::json) as v(blog_id text, instance_id text,
              status text, seq int, snapshot json, machine_version int, view json, created_at timestamptz,
              payload json)),
          b as (
            insert into blogs (blog_id, instance_id, status, seq, snapshot, machine_version, view, created_at,
              updated_at)
            select blog_id, instance_id, status, seq, snapshot, machine_version, view, created_at, created_at from v
            where true ${inHeld(sql`v.instance_id`)}
            on conflict (blog_id) do nothing
            returning blog_id),
          o as (
            insert into outbox (blog_id, instance_id, seq, payload)
            select v.blog_id, v.instance_id, v.seq, v.payload from v join b on b.blog_id = v.blog_id)
          select blog_id, null as allowed from b
          ${fence ? sql`union all select null, instance_id from f` : sql``}`),
      ),
    );
    const created = new Set(answer.flatMap((r) => (r.blog_id ? [r.blog_id] : [])));
    const allowed = fence ? new Set(answer.flatMap((r) => (r.allowed ? [r.allowed] : []))) : stores;
    for (const r of rows) if (!allowed.has(r.instance_id)) fenced?.add(r.blog_id);
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
      }));
      const events = writes.flatMap((w) =>
        w.events.map((e) => ({ blog_id: w.blogId, instance_id: w.instanceId, seq: e.seq, payload: e.payload })),
      );
      const updated = rowsOf<{ blog_id: string }>(
        await retryDeadlocks(async () =>
          db.execute(sql`
          with ${held(writes.map((w) => w.instanceId))} u as (
            update blogs b set status = v.status, seq = v.seq, snapshot = v.snapshot, view = v.view,
              machine_version = v.machine_version, wake_at = v.wake_at, version = b.version + 1, updated_at = now()
            from json_to_recordset(${JSON.stringify(rows)}::json) as v(blog_id text, expected int, status text,
              seq int, snapshot json, machine_version int, view json, wake_at timestamptz)
            where b.blog_id = v.blog_id and b.version = v.expected ${inHeld(sql`b.instance_id`)}
            returning b.blog_id),
          e as (
            insert into outbox (blog_id, instance_id, seq, payload)
            select e.blog_id, e.instance_id, e.seq, e.payload
            from json_to_recordset(${JSON.stringify(events)}::json)
              as e(blog_id text, instance_id text, seq int, payload json)
            where e.blog_id in (select blog_id from u)
            on conflict (blog_id, seq) do nothing)
          select blog_id from u`),
        ),
      );
      const applied = new Set(updated.map((r) => r.blog_id));
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

    /** Blogs that still have work or a timer: what a starting process rehydrates. */
    async loadActive(): Promise<BlogRow[]> {
      return db
        .select()
        .from(blogs)
        .where(and(inArray(blogs.status, ACTIVE), isNull(blogs.quarantinedAt)))
        .orderBy(blogs.createdAt);
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

    /** Marks a blog whose snapshot cannot be restored; it stays visible, and is never loaded again. */
    async quarantine(blogId: string, reason: string): Promise<void> {
      await db
        .update(blogs)
        .set({ quarantinedAt: new Date(), quarantineReason: reason.slice(0, 2000) })
        .where(eq(blogs.blogId, blogId));
    },
  };
}

/** The blog repository's interface. */
export type BlogRepo = ReturnType<typeof createBlogRepo>;
