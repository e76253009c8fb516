/**
 * The lease fence under interleaving (needs PostgreSQL): two real connections, one the old owner's write paused
 * inside its transaction after its fence check, the other a takeover. The takeover must wait for that write (so the
 * new owner reads it), a renewal must not, and a write naming an epoch the store no longer has is refused even when
 * the owner's name matches again (the store was lost and taken back).
 *
 * Breaking the fence (`heldLeases` in src/db/fence.ts as a plain read without `for key share`, or the unique index
 * store_leases_epoch_key dropped) lets the takeover commit under the paused write: the first test fails; checking the
 * owner only (no epoch) makes the stale write of the third test land.
 */
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createBlogRepo } from '../../src/db/blog.repo';
import type { Db } from '../../src/db/database';
import { createLeaseRepo } from '../../src/db/lease.repo';
import { openPostgres } from '../../src/db/pg.client';
import * as schema from '../../src/db/schema';
import { newBlog, writeOf } from '../support/blog.rows';
import { describeWithPostgres } from '../support/servers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await describeWithPostgres('lease fence under interleaving (needs PostgreSQL)', (db) => {
  const clients: pg.Client[] = [];
  /** A connection of its own: queries on it run one after the other, transactions on it are ours to end. */
  const connection = async (): Promise<{ client: pg.Client; db: Db }> => {
    const client = new pg.Client({ connectionString: db().url });
    await client.connect();
    clients.push(client);
    return { client, db: drizzle(client, { schema }) as unknown as Db };
  };
  let admin: pg.Client;
  const row = async (blogId: string) =>
    (await admin.query('select version, snapshot from blogs where blog_id = $1', [blogId])).rows[0] as {
      version: number;
      snapshot: { marker: string };
    };
  const outboxOf = async (blogId: string) =>
    (await admin.query('select seq from outbox where blog_id = $1 order by seq', [blogId])).rows as Array<{
      seq: number;
    }>;

  beforeAll(async () => {
    const database = openPostgres(db().url, () => undefined, 2);
    await database.migrate();
    await database.close();
    admin = (await connection()).client;
  });
  afterEach(async () => {
    for (const c of clients.splice(1)) await c.end().catch(() => undefined);
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
  });

  it('a takeover waits for a fenced write in flight (the new owner reads it); a renewal does not', async () => {
    const a = await connection(); // the old owner's write, paused inside its transaction
    const aLeases = await connection(); // the old owner's lease statements
    const b = await connection(); // the process taking over
    const leasesA = createLeaseRepo(aLeases.db, 'node-a', 400);
    const leasesB = createLeaseRepo(b.db, 'node-b', 60_000);
    const claimA = await leasesA.claim('s1');
    expect(claimA).toEqual({ held: true, takeover: true, epoch: 1 });
    const repoA = createBlogRepo(a.db, { owner: 'node-a', epochOf: (id) => (id === 's1' ? 1 : undefined) });
    expect(await repoA.insert(newBlog('b1', 's1'))).toBe(true);

    await a.client.query('begin');
    expect(await repoA.commit([writeOf('b1', 's1', 0, 'from-a')])).toEqual(new Set()); // passed the fence
    // The write holds the lease row FOR KEY SHARE: a renewal (expires_at only) is not held back by it.
    const renewStarted = Date.now();
    expect(await leasesA.renew(['s1'])).toEqual(new Set(['s1']));
    expect(Date.now() - renewStarted).toBeLessThan(1_000);

    await sleep(500); // node-a's lease runs out (by the database's clock) while its write is still uncommitted
    let takenAt = 0;
    const takeover = (async () => {
      const claim = await leasesB.claim('s1');
      takenAt = Date.now();
      return { claim, seen: await row('b1') }; // what the new owner rehydrates from
    })();
    await sleep(600);
    expect(takenAt, 'the takeover committed under a fenced write still in flight').toBe(0);
    const committedAt = Date.now();
    await a.client.query('commit');
    const { claim, seen } = await takeover;
    expect(claim).toEqual({ held: true, takeover: true, epoch: 2 });
    expect(takenAt).toBeGreaterThanOrEqual(committedAt);
    // Nothing of node-a's landed after the takeover: the new owner read the write.
    expect(seen).toEqual(await row('b1'));
    expect(seen).toMatchObject({ version: 1, snapshot: { marker: 'from-a' } });

    // From now on node-a's writes are refused, in a transaction or not.
    expect(await repoA.commit([writeOf('b1', 's1', 1, 'late')])).toEqual(new Set(['b1']));
    expect((await row('b1')).snapshot.marker).toBe('from-a');
    expect(await outboxOf('b1')).toEqual([{ seq: 1 }, { seq: 2 }]);
  }, 20_000);

  it('a fenced write that arrives while a takeover is uncommitted waits for it, then is refused', async () => {
    const a = await connection();
    const b = await connection();
    const leasesA = createLeaseRepo(a.db, 'node-a', 100);
    const leasesB = createLeaseRepo(b.db, 'node-b', 60_000);
    expect(await leasesA.claim('s2')).toMatchObject({ held: true, epoch: 1 });
    const repoA = createBlogRepo(a.db, { owner: 'node-a', epochOf: (id) => (id === 's2' ? 1 : undefined) });
    expect(await repoA.insert(newBlog('b2', 's2'))).toBe(true);
    await sleep(200);
    await b.client.query('begin');
    expect(await leasesB.claim('s2')).toMatchObject({ held: true, takeover: true, epoch: 2 });
    let answered = false;
    const late = repoA.commit([writeOf('b2', 's2', 0, 'late')]).finally(() => (answered = true));
    await sleep(400);
    expect(answered, 'the fenced write did not wait for the takeover holding the lease row').toBe(false);
    await b.client.query('commit');
    expect(await late).toEqual(new Set(['b2']));
    expect(await row('b2')).toMatchObject({ version: 0, snapshot: { marker: 'created' } });
  }, 20_000);

  it('a write naming an old epoch is refused, even by the same owner after it took the store back', async () => {
    const a = await connection();
    const b = await connection();
    const leasesA = createLeaseRepo(a.db, 'node-a', 100);
    const leasesB = createLeaseRepo(b.db, 'node-b', 60_000);
    expect(await leasesA.claim('s3')).toMatchObject({ epoch: 1 });
    let epoch = 1;
    const repoA = createBlogRepo(a.db, { owner: 'node-a', epochOf: () => epoch });
    expect(await repoA.insert(newBlog('b3', 's3'))).toBe(true);
    await sleep(200);
    expect(await leasesB.claim('s3')).toMatchObject({ held: true, epoch: 2 });
    await leasesB.release(['s3']);
    expect(await leasesA.claim('s3')).toMatchObject({ held: true, takeover: true, epoch: 3 });
    // A write of the first tenure (its actor was dropped when the store was lost) still names epoch 1.
    expect(await repoA.commit([writeOf('b3', 's3', 0, 'stale')])).toEqual(new Set(['b3']));
    expect((await row('b3')).snapshot.marker).toBe('created');
    // A create of that tenure is refused too, and says so.
    const refused = new Set<string>();
    expect(await repoA.insertMany([newBlog('b3-new', 's3')], refused)).toEqual(new Set());
    expect(refused).toEqual(new Set(['b3-new']));
    epoch = 3;
    expect(await repoA.commit([writeOf('b3', 's3', 0, 'current')])).toEqual(new Set());
    expect((await row('b3')).snapshot.marker).toBe('current');
  }, 20_000);
});
