/** Drizzle schema: one row per blog, and the outbox of status events. `drizzle/` is generated from it. */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  check,
  customType,
  date,
  index,
  integer,
  json,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * A PostgreSQL transaction id (64 bits, never wraps), as text. The relay reads events in (transaction, id) order up
 * to the oldest transaction still running, so an event is never passed over by one committed after it.
 */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * One row per blog: its actor's latest persisted snapshot and the fields the API reads. The JSON columns are `json`,
 * not `jsonb`: they are written on every transition and read back whole, never queried inside, and `json` stores the
 * text as sent (no parse into a binary tree with sorted keys on the way in, no re-serialization on the way out).
 */
export const blogs = pgTable(
  'blogs',
  {
    blogId: text('blog_id').primaryKey(),
    instanceId: text('instance_id').notNull(),
    status: text('status').notNull(),
    /** Status changes so far; the `seq` of the latest event. */
    seq: integer('seq').notNull().default(0),
    /** Optimistic concurrency: every write names the version it read. */
    version: integer('version').notNull().default(0),
    snapshot: json('snapshot').notNull(),
    machineVersion: integer('machine_version').notNull(),
    /** The public fields (ideas, idea, post, error), as the API shows them. */
    view: json('view')
      .notNull()
      .default(sql`'{}'::json`),
    /** When a timer of this blog fires next (selection timeout, retry backoff). */
    wakeAt: timestamp('wake_at', { withTimezone: true, mode: 'date' }),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true, mode: 'date' }),
    quarantinedAt: timestamp('quarantined_at', { withTimezone: true, mode: 'date' }),
    quarantineReason: text('quarantine_reason'),
    /** When retention dropped this ended blog's snapshot, events and provider refs (its row and view stay). */
    prunedAt: timestamp('pruned_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('blogs_store_created_idx').on(t.instanceId, t.createdAt.desc(), t.blogId.desc()),
    index('blogs_created_idx').on(t.createdAt.desc(), t.blogId.desc()),
    // Counts per store and status (the fleet's starting numbers) as an index-only scan, and a store's live blogs.
    index('blogs_store_status_idx').on(t.instanceId, t.status),
    // Quarantined blogs are rare: counting them must not scan every row.
    index('blogs_quarantined_idx')
      .on(t.quarantinedAt)
      .where(sql`quarantined_at is not null`),
    index('blogs_active_idx')
      .on(t.status)
      .where(sql`status not in ('DONE', 'CANCELLED', 'FAILED') and quarantined_at is null`),
    // Ended blogs retention has not pruned yet, oldest first: each batch reads only what it will prune.
    index('blogs_retention_idx')
      .on(t.updatedAt, t.blogId)
      .where(sql`status in ('DONE', 'CANCELLED') and pruned_at is null`),
    index('blogs_wake_idx')
      .on(t.wakeAt)
      .where(sql`status = 'AWAITING_SELECTION' and quarantined_at is null`),
  ],
);

/**
 * Status events, written in the same transaction as the status change, relayed to the bus in `seq` order. Rows are
 * never updated: what has been relayed is everything up to `outbox_cursor`, in (`tx`, `id`) order.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    blogId: text('blog_id').notNull(),
    instanceId: text('instance_id').notNull(),
    seq: integer('seq').notNull(),
    payload: json('payload').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The transaction that wrote the event. */
    tx: xid8('tx')
      .notNull()
      .default(sql`pg_current_xact_id()`),
  },
  (t) => [uniqueIndex('outbox_blog_seq_idx').on(t.blogId, t.seq), index('outbox_relay_idx').on(t.tx, t.id)],
);

/** The relay's position: every event at or before (`tx`, `lastId`) has been published. One row. */
export const outboxCursor = pgTable(
  'outbox_cursor',
  {
    id: integer('id').primaryKey().default(1),
    tx: xid8('tx').notNull(),
    lastId: bigint('last_id', { mode: 'number' }).notNull(),
  },
  () => [check('outbox_cursor_one_row', sql`id = 1`)],
);

/** Provider references per blog (prediction id, draft id, media id): what a repeated stage looks up first. */
export const providerRefs = pgTable(
  'provider_refs',
  {
    blogId: text('blog_id').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.blogId, t.key] })],
);

/**
 * Which process advances a store's blogs. Ownership is per store, so a store's working cap and its fairness
 * are exact even with several processes; every blog write is fenced by it (owner and epoch, under a lock: see
 * the fence of `src/db/blog.repo.ts`).
 */
export const storeLeases = pgTable(
  'store_leases',
  {
    instanceId: text('instance_id').primaryKey(),
    owner: text('owner'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** Bumped on every change of owner. */
    epoch: integer('epoch').notNull().default(0),
  },
  (t) => [
    // Not for lookups: it makes `epoch` a key column, so a takeover (which bumps it) conflicts with the FOR KEY
    // SHARE lock every fenced write takes on the row, while a renewal (expires_at only) does not.
    uniqueIndex('store_leases_epoch_key').on(t.instanceId, t.epoch),
  ],
);

/**
 * What each store spent per UTC day: tokens as the text provider reported them and images created, retries and
 * repeats included. Added to as answers come in; `GET /api/stores/:instanceId/usage` and the daily budget read it.
 */
export const storeUsage = pgTable(
  'store_usage',
  {
    instanceId: text('instance_id').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    inputTokens: bigint('input_tokens', { mode: 'number' }).notNull().default(0),
    outputTokens: bigint('output_tokens', { mode: 'number' }).notNull().default(0),
    images: integer('images').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.day] })],
);
