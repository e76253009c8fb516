/**
 * The events thread (issue 15; needs PostgreSQL and NATS): a status event leaves as soon as its commit lands, even
 * while the main thread is busy, because a thread of its own hears the commit from PostgreSQL (a notice on the
 * repository's channel) and publishes it. Also: the thread keeps a blog's events in order (an event whose previous
 * one it has not seen published goes to the relay), a payload too large for a notice goes to the relay, it listens
 * again after losing its connection, and a composed runtime on PostgreSQL and NATS runs the thread and stops it.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeRuntime } from '../../src/app/compose';
import { createEventThread, type EventThread } from '../../src/bus/event.thread';
import { eventMsgId } from '../../src/bus/outbox.direct';
import { loadConfig } from '../../src/config';
import { createBlogRepo, type BlogRepo } from '../../src/db/blog.repo';
import { openPostgres } from '../../src/db/pg.client';
import type { Database } from '../../src/db/database';
import { createLogger } from '../../src/logger';
import { newBlog, writeOf } from '../support/blog.rows';
import { requireNats, requirePostgres, type NatsHandle, type PostgresHandle } from '../support/servers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Keeps the main thread busy, as a burst of actors would: nothing else runs on it meanwhile. */
const busy = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until);
};

const probeDb = await requirePostgres();
await probeDb?.drop();
const probeNats = await requireNats();

describe.skipIf(!probeDb || !probeNats)('events thread (needs PostgreSQL and NATS)', () => {
  let db: PostgresHandle;
  let nats: NatsHandle;
  let database: Database;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let stream: string;

  beforeAll(async () => {
    db = (await requirePostgres())!;
    nats = (await requireNats())!;
    database = openPostgres(db.url, () => undefined, 3);
    await database.migrate();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    stream = `${nats.prefix.toUpperCase()}_EVT`;
    await jsm.streams.add({
      name: stream,
      subjects: [`${nats.prefix}.events.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
    });
  });
  afterAll(async () => {
    await jsm?.streams.delete(stream).catch(() => undefined);
    await nc?.close();
    await database?.close();
    await db?.drop();
  });

  /** A thread on a fresh channel, the repository announcing on it, and what the thread left to the relay. */
  async function startThread(): Promise<{ thread: EventThread; repo: BlogRepo; kicks: () => number }> {
    const channel = `inkwell_events_${randomBytes(6).toString('hex')}`;
    let kicks = 0;
    const thread = createEventThread({
      data: {
        databaseUrl: db.url,
        natsServers: [nats.url],
        name: 'event-thread-test',
        prefix: nats.prefix,
        channel,
        logLevel: 'silent',
      },
      relay: { kick: () => kicks++, sentAhead: () => undefined },
      log: createLogger('silent', 'test'),
    });
    await thread.start();
    await expect.poll(() => kicks).toBe(1); // once when it starts listening: what was committed before is the relay's
    kicks = 0;
    return { thread, repo: createBlogRepo(database.db, undefined, channel), kicks: () => kicks };
  }

  /** When the stream stored `blogId`'s event `seq`, or undefined. */
  async function storedAt(blogId: string, instanceId: string, seq: number): Promise<number | undefined> {
    const msg = await jsm.streams
      .getMessage(stream, { last_by_subj: `${nats.prefix}.events.${instanceId}.${blogId}` })
      .catch(() => null);
    return msg?.header.get('Nats-Msg-Id') === eventMsgId(blogId, seq) ? msg.time.getTime() : undefined;
  }

  it('publishes a committed event while the main thread is busy', async () => {
    const { thread, repo } = await startThread();
    try {
      expect(await repo.insert(newBlog('et-1', 'store-et'))).toBe(true);
      await expect.poll(() => storedAt('et-1', 'store-et', 1), { timeout: 5_000 }).toBeDefined();

      // The transition's statement waits on a row lock that another session lets go 300 ms from now, whatever
      // this thread does; meanwhile this thread is kept busy for 1.5 s. The commit lands during that time.
      const locker = new pg.Client({ connectionString: db.url });
      await locker.connect();
      try {
        await locker.query(`begin; select 1 from blogs where blog_id = 'et-1' for update`);
        const released = locker.query('select pg_sleep(0.3); commit');
        const committing = repo.commit([writeOf('et-1', 'store-et', 0, 'busy')]);
        await sleep(50); // the statement is sent, and waits for the lock
        const busyFrom = Date.now();
        busy(1_500);
        const busyUntil = Date.now();
        expect(await committing).toEqual(new Set());
        await released;
        const { rows } = await locker.query<{ t: Date }>(
          `select created_at as t from outbox where blog_id = 'et-1' and seq = 2`,
        );
        const committedAt = rows[0]!.t.getTime();
        expect(committedAt).toBeGreaterThan(busyFrom);
        const stored = await storedAt('et-1', 'store-et', 2);
        expect(stored).toBeDefined();
        // Stored in the stream while this thread was still busy, within moments of the commit.
        expect(stored!).toBeLessThan(busyUntil);
        expect(stored! - committedAt).toBeLessThan(200);
      } finally {
        await locker.end();
      }
    } finally {
      await thread.stop();
    }
  }, 30_000);

  it('leaves to the relay an event whose previous one it has not seen published, and a payload too large', async () => {
    const { thread, repo, kicks } = await startThread();
    try {
      // Created before the thread listened: seq 1 is the relay's. The thread must not publish seq 2 ahead of it.
      const quiet = createBlogRepo(database.db);
      expect(await quiet.insert(newBlog('et-2', 'store-et'))).toBe(true);
      expect(await repo.commit([writeOf('et-2', 'store-et', 0, 'gap')])).toEqual(new Set());
      await expect.poll(kicks, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(await storedAt('et-2', 'store-et', 2)).toBeUndefined();

      // The relay published seq 2: the thread sends seq 3 itself.
      thread.published('et-2', 2, 'GENERATING_IDEAS');
      const next = { ...writeOf('et-2', 'store-et', 1, 'next'), seq: 3 };
      next.events = [{ seq: 3, payload: { status: 'GENERATING_IDEAS', marker: 'next' } }];
      await sleep(50); // the hand-over reaches the thread first
      expect(await repo.commit([next])).toEqual(new Set());
      await expect.poll(() => storedAt('et-2', 'store-et', 3), { timeout: 5_000 }).toBeDefined();

      // A payload too large for a notice: announced without it, left to the relay.
      const before = kicks();
      const large = { ...writeOf('et-2', 'store-et', 2, 'large'), seq: 4 };
      large.events = [{ seq: 4, payload: { status: 'GENERATING_IDEAS', marker: 'x'.repeat(10_000) } }];
      expect(await repo.commit([large])).toEqual(new Set());
      await expect.poll(kicks, { timeout: 5_000 }).toBeGreaterThan(before);
      expect(await storedAt('et-2', 'store-et', 4)).toBeUndefined();
    } finally {
      await thread.stop();
    }
  }, 30_000);

  it('listens again after losing its PostgreSQL connection, and the relay is told to send what it missed', async () => {
    const { thread, repo, kicks } = await startThread();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and query like 'listen %'`,
      );
      expect(rowCount).toBe(1);
      await expect.poll(kicks, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(await repo.insert(newBlog('et-3', 'store-et'))).toBe(true);
      await expect.poll(() => storedAt('et-3', 'store-et', 1), { timeout: 5_000 }).toBeDefined();
    } finally {
      await admin.end();
      await thread.stop();
    }
  }, 30_000);

  it('runs in a runtime composed on PostgreSQL and NATS, and stops with it', async () => {
    const listeners = async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          `select count(*) as n from pg_stat_activity where datname = current_database() and query like 'listen %'`,
        );
        return Number(rows[0]!.n);
      } finally {
        await client.end();
      }
    };
    const config = loadConfig({
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      INKWELL_SUBJECT_PREFIX: `${nats.prefix}_rt`,
      INKWELL_COMMANDS_STREAM: `${nats.prefix.toUpperCase()}_RT_CMD`,
      INKWELL_EVENTS_STREAM: `${nats.prefix.toUpperCase()}_RT_EVT`,
      INKWELL_NODE_ID: 'node-et',
      INKWELL_LOG_LEVEL: 'silent',
    });
    const composed = await composeRuntime({ config });
    try {
      await composed.runtime.start(false);
      expect(await listeners()).toBe(1);
    } finally {
      await composed.runtime.stop();
      await jsm.streams.delete(config.INKWELL_COMMANDS_STREAM).catch(() => undefined);
      await jsm.streams.delete(config.INKWELL_EVENTS_STREAM).catch(() => undefined);
    }
    await expect.poll(listeners, { timeout: 5_000 }).toBe(0);
  }, 60_000);
});
