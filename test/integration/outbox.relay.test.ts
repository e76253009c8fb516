/**
 * The outbox relay's cursor: events go out in (transaction, id) order, nothing is marked row by row, and an event
 * committed after a later one was relayed is still relayed (the case a plain "last id" cursor loses), while a
 * committed event does not wait for an unrelated transaction to end, and is not sent twice. Also: a
 * partial publish resumes where it stopped, one relay at a time, pruning keeps what is not published, and
 * migrating a database of the published_at era relays exactly what was still unpublished there.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER, rowsOf, type Database } from '../../src/db/database';
import { createOutboxRepo, type OutboxRepo, type RelayRow } from '../../src/db/outbox.repo';
import { openPostgres } from '../../src/db/pg.client';
import type { Bus } from '../../src/bus/bus.port';
import { createOutboxRelay, type OutboxRelay } from '../../src/bus/outbox.relay';
import { subjectsFor } from '../../src/bus/subjects';
import { createLogger } from '../../src/logger';
import { databaseDrivers } from '../support/drivers';
import { requirePostgres } from '../support/servers';

const postgres = await requirePostgres(); // undefined: skipped (the helper printed why); throws under CI=true
afterAll(async () => {
  await postgres?.drop();
});

const DRIVERS = databaseDrivers(postgres);

const insertEvent = (blogId: string, seq: number) =>
  sql`insert into outbox (blog_id, instance_id, seq, payload)
      values (${blogId}, 'store-1', ${seq}, ${JSON.stringify({ blogId, seq })}::json)`;

const silentLogger = () => createLogger('silent', 'test');

/**
 * Waits until `check()` holds. Long: the cursor moves only past transactions older than every transaction still
 * running on the whole server (transaction ids are cluster-wide), so another test file's open transaction, in its
 * own database, holds every cursor back until it ends (test/integration/ack.commit.test.ts keeps one open 30 s).
 */
async function eventually(check: () => boolean | Promise<boolean>, ms = 100_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const SLOW = 120_000;

/**
 * Hands out the events after the cursor once: returns "blogId:seq" of those not in `seen` (events already handed
 * out, which the cursor may still be behind), as the relay does with the events it sent ahead.
 */
async function drain(outbox: OutboxRepo, seen = new Set<number>(), limit = 500): Promise<string[]> {
  const sent: string[] = [];
  for (;;) {
    let fresh = 0;
    const n = await outbox.relay(limit, async (rows) => {
      for (const r of rows.filter((row) => !seen.has(row.id))) {
        seen.add(r.id);
        sent.push(`${r.blogId}:${r.seq}`);
        fresh++;
      }
      return rows.length;
    });
    if (n < limit || fresh === 0) return sent;
  }
}

/** Drains until the cursor has passed every event; returns what was newly handed out meanwhile. */
async function settle(outbox: OutboxRepo, seen = new Set<number>()): Promise<string[]> {
  const sent: string[] = [];
  await eventually(async () => {
    sent.push(...(await drain(outbox, seen)));
    return (await outbox.backlog()) === 0;
  });
  return sent;
}

/** A bus that records what is published; `fail(payload)` may throw to play a lost PubAck. */
function recordingBus(published: string[], fail: (payload: unknown) => Promise<void> = async () => undefined): Bus {
  return {
    kind: 'memory',
    publish: async (_subject, payload) => {
      await fail(payload);
      published.push(JSON.stringify(payload));
    },
    subscribe: () => () => undefined,
    close: async () => undefined,
  };
}

/** Kicks `relay` until the cursor has passed every event, then stops it. */
async function runUntilSettled(relay: OutboxRelay, outbox: OutboxRepo): Promise<void> {
  await eventually(async () => {
    relay.kick();
    return (await outbox.backlog()) === 0;
  });
  await relay.stop();
}

describe.each(DRIVERS)('outbox relay on $name', (driver) => {
  describe.skipIf(!driver.available)('cursor', () => {
    let database: Database;
    let outbox: OutboxRepo;

    beforeAll(async () => {
      database = await driver.open();
      await database.migrate();
      outbox = createOutboxRepo(database.db);
    });
    afterAll(async () => {
      await database?.close();
    });
    beforeEach(async () => {
      await settle(outbox); // whatever an earlier case left behind
      await database.db.execute(sql`delete from outbox`);
    }, SLOW);

    it('relays in commit order, each event once, and leaves every row as written', { timeout: SLOW }, async () => {
      await database.db.execute(insertEvent('a', 1));
      await database.db.execute(insertEvent('b', 1));
      await database.db.execute(insertEvent('a', 2));
      expect(await outbox.backlog()).toBe(3);
      const seen = new Set<number>();
      expect(await settle(outbox, seen)).toEqual(['a:1', 'b:1', 'a:2']);
      expect(await drain(outbox, seen)).toEqual([]);
      // Nothing is updated per event: the rows are exactly as inserted, still there for the timeline.
      expect((await outbox.forBlog('a')).map((r) => r.payload)).toEqual([
        { blogId: 'a', seq: 1 },
        { blogId: 'a', seq: 2 },
      ]);
    });

    it('resumes after a partial publish with the first event that was not sent', { timeout: SLOW }, async () => {
      for (let seq = 1; seq <= 5; seq++) await database.db.execute(insertEvent('p', seq));
      // Only once the five are settled can the cursor move past the two sent (see `eventually`).
      await eventually(async () => {
        let settled = false;
        await outbox.relay(500, async (rows) => ((settled = rows.every((r) => r.settled)), 0));
        return settled;
      });
      const seen: number[] = [];
      const n = await outbox.relay(500, async (rows: RelayRow[]) => {
        seen.push(...rows.map((r) => r.seq));
        return 2; // the bus failed after two
      });
      expect(n).toBe(2);
      expect(seen).toEqual([1, 2, 3, 4, 5]);
      expect(await outbox.backlog()).toBe(3);
      expect(await settle(outbox)).toEqual(['p:3', 'p:4', 'p:5']);
    });

    it('prunes only events that were published and are older than the limit', { timeout: SLOW }, async () => {
      await database.db.execute(insertEvent('old', 1));
      await settle(outbox);
      await database.db.execute(insertEvent('old', 2)); // not published yet
      await outbox.prune(new Date(Date.now() + 60_000));
      expect((await outbox.forBlog('old')).map((r) => r.seq)).toEqual([2]);
      expect(await settle(outbox)).toEqual(['old:2']);
    });
  });
});

describe.skipIf(postgres === undefined)('outbox relay with concurrent transactions (PostgreSQL)', () => {
  let database: Database;
  let outbox: OutboxRepo;
  let other: pg.Client;

  beforeAll(async () => {
    database = openPostgres(postgres!.url, () => undefined);
    await database.migrate();
    outbox = createOutboxRepo(database.db);
    other = new pg.Client({ connectionString: postgres!.url });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await database?.close();
  });

  beforeEach(async () => {
    await settle(outbox);
    await database.db.execute(sql`delete from outbox`);
  }, SLOW);

  it(
    'does not pass over an event whose transaction commits after a later event was relayed',
    { timeout: SLOW },
    async () => {
      // A slow transaction takes the lower event id first...
      await other.query('begin');
      await other.query(
        `insert into outbox (blog_id, instance_id, seq, payload) values ('slow', 'store-1', 1, '{"slow":1}')`,
      );
      // ...then a fast one commits a higher id.
      await database.db.execute(insertEvent('fast', 1));
      const [ids] = rowsOf<{ slow: number; fast: number }>(
        await database.db.execute(sql`select
        (select max(id) from outbox where blog_id = 'fast')::int as fast,
        (select count(*) from outbox where blog_id = 'slow')::int as slow`),
      );
      expect(ids!.slow, 'the slow event is not visible yet').toBe(0);
      // While the slow transaction runs, the fast event is handed out ahead, but the cursor holds back (it would
      // otherwise move past the slow event's id): it is handed out again once the slow one has committed.
      const seen = new Set<number>();
      expect(await drain(outbox, seen)).toEqual(['fast:1']);
      expect(await outbox.backlog()).toBe(1);
      await other.query('commit');
      expect(await settle(outbox, seen)).toEqual(['slow:1']);
    },
  );

  it(
    'publishes an event at once while an unrelated transaction is open, once, and the late one after it',
    { timeout: SLOW },
    async () => {
      const published: string[] = [];
      const bus = recordingBus(published);
      const relay = createOutboxRelay({ repo: outbox, bus, subjects: subjectsFor('t'), log: silentLogger() });
      await other.query('begin');
      await other.query(
        `insert into outbox (blog_id, instance_id, seq, payload) values ('late', 's', 1, '{"late":1}')`,
      );
      await database.db.execute(insertEvent('early', 1));
      relay.kick();
      await eventually(() => published.length === 1, 5_000);
      expect(published).toEqual(['{"blogId":"early","seq":1}']);
      await other.query('commit');
      await runUntilSettled(relay, outbox); // then one last run: nothing is sent twice
      expect(published).toEqual(['{"blogId":"early","seq":1}', '{"late":1}']);
    },
  );

  it(
    'does not send again what the direct path sent, and still moves its cursor past it',
    { timeout: SLOW },
    async () => {
      const published: string[] = [];
      const heard: string[] = [];
      const bus = recordingBus(published);
      const relay = createOutboxRelay({
        repo: outbox,
        bus,
        subjects: subjectsFor('t'),
        log: silentLogger(),
        onPublished: (row) => heard.push(`${row.blogId}:${row.seq}`),
      });
      await database.db.execute(insertEvent('direct', 1));
      await database.db.execute(insertEvent('left', 1));
      await database.db.execute(insertEvent('direct', 2));
      relay.sentAhead('direct:1');
      relay.sentAhead('direct:2');
      await runUntilSettled(relay, outbox); // the cursor passes all three
      expect(published).toEqual(['{"blogId":"left","seq":1}']);
      expect(heard).toEqual(['left:1']);
    },
  );

  it(
    'leaves a young event to the direct path unless its blog was left to the relay, and sends it once older',
    { timeout: SLOW },
    async () => {
      const published: string[] = [];
      const relay = createOutboxRelay({
        repo: outbox,
        bus: recordingBus(published),
        subjects: subjectsFor('t'),
        log: silentLogger(),
        freshMs: 1_500,
      });
      await database.db.execute(insertEvent('in-flight', 1)); // the direct path may be sending it right now
      await database.db.execute(insertEvent('left', 1));
      relay.kick('left'); // the direct path left this blog's event to the relay: it goes at once
      await eventually(() => published.length === 1, 5_000);
      for (let i = 0; i < 5; i++) {
        relay.kick(); // runs while 'in-flight' is young: it stays the direct path's, and 'left' is not sent again
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(published).toEqual(['{"blogId":"left","seq":1}']);
      await eventually(() => (relay.kick(), published.length === 2), 10_000);
      await runUntilSettled(relay, outbox);
      expect(published).toEqual(['{"blogId":"left","seq":1}', '{"blogId":"in-flight","seq":1}']);
    },
  );

  it(
    "sends a blog's next event only after its previous one was acknowledged, also when a publish fails",
    { timeout: SLOW },
    async () => {
      const published: string[] = [];
      let failOnce = true;
      const bus = recordingBus(published, async (payload) => {
        const { blogId, seq } = payload as { blogId: string; seq: number };
        await new Promise((r) => setTimeout(r, blogId === 'x' ? 20 : 0)); // x's acks come last
        if (blogId === 'x' && seq === 1 && failOnce) {
          failOnce = false;
          throw new Error('no PubAck');
        }
      });
      for (const [blogId, seq] of [
        ['x', 1],
        ['y', 1],
        ['x', 2],
        ['y', 2],
        ['x', 3],
      ] as const)
        await database.db.execute(insertEvent(blogId, seq));
      const relay = createOutboxRelay({ repo: outbox, bus, subjects: subjectsFor('t'), log: silentLogger() });
      relay.kick();
      await eventually(() => published.some((p) => p.includes('"y"')), 5_000);
      await runUntilSettled(relay, outbox);
      const order = (blogId: string) =>
        published
          .map((p) => JSON.parse(p) as { blogId: string; seq: number })
          .filter((p) => p.blogId === blogId)
          .map((p) => `${p.blogId}:${p.seq}`);
      expect(order('x')).toEqual(['x:1', 'x:2', 'x:3']);
      expect(order('y')[0]).toBe('y:1');
      expect(new Set(order('y'))).toEqual(new Set(['y:1', 'y:2']));
    },
  );

  it('lets one relay run at a time: another process gets -1 while the first holds the lock', async () => {
    await database.db.execute(insertEvent('locked', 1));
    const peerDb = openPostgres(postgres!.url, () => undefined);
    const peer = createOutboxRepo(peerDb.db);
    let inner: number | undefined;
    try {
      const n = await outbox.relay(500, async (rows) => {
        inner = await peer.relay(500, async () => 1);
        return rows.length;
      });
      expect(n).toBe(1);
      expect(inner).toBe(-1);
    } finally {
      await peerDb.close();
    }
  });
});

describe.skipIf(postgres === undefined)('migrating an outbox of the published_at era (PostgreSQL)', () => {
  it('relays exactly the events that were unpublished before the migration', async () => {
    const fresh = (await requirePostgres())!;
    // The migrations before the cursor, on their own: the database as an older Inkwell left it.
    const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as {
      entries: Array<{ tag: string }>;
    };
    const cut = journal.entries.findIndex((e) => e.tag.endsWith('_outbox_cursor'));
    expect(cut).toBeGreaterThan(0);
    const older = mkdtempSync(join(tmpdir(), 'inkwell-migrations-'));
    cpSync(MIGRATIONS_FOLDER, older, { recursive: true });
    writeFileSync(
      join(older, 'meta/_journal.json'),
      JSON.stringify({ ...journal, entries: journal.entries.slice(0, cut) }),
    );
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    try {
      await migrate(drizzle(client), { migrationsFolder: older });
      await client.query(`insert into outbox (blog_id, instance_id, seq, payload, published_at) values
        ('m', 'store-1', 1, '{"seq":1}', now()), ('m', 'store-1', 2, '{"seq":2}', now()),
        ('m', 'store-1', 3, '{"seq":3}', null), ('n', 'store-1', 1, '{"seq":1}', null)`);
      await client.query(`insert into blogs (blog_id, instance_id, status, snapshot, machine_version, view)
        values ('m', 'store-1', 'PUBLISHING', '{"value":"PUBLISHING"}', 1, '{"idea":{"title":"T"}}')`);

      const database = openPostgres(fresh.url, () => undefined);
      try {
        await database.migrate();
        const outbox = createOutboxRepo(database.db);
        expect(await outbox.backlog()).toBe(2);
        expect(await drain(outbox)).toEqual(['m:3', 'n:1']);
        // The JSON columns kept their values through the change of type.
        const [blog] = rowsOf<{ snapshot: unknown; view: unknown }>(
          await database.db.execute(sql`select snapshot, view from blogs where blog_id = 'm'`),
        );
        expect(blog).toEqual({ snapshot: { value: 'PUBLISHING' }, view: { idea: { title: 'T' } } });
      } finally {
        await database.close();
      }
    } finally {
      await client.end();
      await fresh.drop();
    }
  });
});
