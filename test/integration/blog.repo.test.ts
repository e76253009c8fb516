import { readFileSync } from 'node:fs';
/**
 * Blog persistence round trips, the same cases on both drivers: embedded PGlite (in memory, always runs) and a real
 * PostgreSQL server (a fresh database from test/support/servers.ts; skipped with a printed reason when there is
 * none, a failure under CI=true). Also the persister's write-behind batching and restoring a live actor from a row.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type Actor } from 'xstate';
import {
  BLOG_MACHINE_VERSION,
  blogMachine,
  type BlogInput,
  type BlogMachine,
  type StageInput,
} from '../../machines/blog.machine';
import { BLOG_STATUSES } from '../../machines/blog.types';
import type { Article, BlogStatus, HeaderImage, Idea, PublishedPost, StageOutput } from '../../machines/blog.types';
import { createBlogRepo, type BlogRepo, type BlogWrite, type OutboxEvent } from '../../src/db/blog.repo';
import { rowsOf, type Database } from '../../src/db/database';
import { openPostgres } from '../../src/db/pg.client';
import { eventPayload, publicFields, statusOf, wakeAtOf } from '../../src/runtime/blog.view';
import { createPersister } from '../../src/runtime/persister';
import { databaseDrivers } from '../support/drivers';
import { requirePostgres } from '../support/servers';

const postgres = await requirePostgres(); // undefined: skipped (the helper printed why); throws under CI=true
afterAll(async () => {
  await postgres?.drop();
});

const DRIVERS = databaseDrivers(postgres);

const T0 = 1_700_000_000_000;
const SETTINGS = { maxAttempts: 3, retryBaseMs: 1000, selectionTimeoutMs: 60_000 };
const IDEAS: Idea[] = [
  { title: 'Boots for snow', summary: 'Grip and warmth' },
  { title: 'Caring for leather', summary: 'Wax, brush, repeat' },
];

const inputOf = (blogId: string, instanceId = 'store-1'): BlogInput => ({
  blogId,
  instanceId,
  request: { topic: 'Winter boots', keywords: ['boots'] },
  settings: SETTINGS,
});

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The blog machine with stub stages on a simulated clock; `ideas` can fail first with a retryable error. */
function stubbedMachine(clock: SimulatedClock, options: { ideasFailFirst?: boolean } = {}): BlogMachine {
  let ideasCalls = 0;
  const ok = <T>(result: T) => fromPromise<StageOutput<T>, StageInput>(async () => ({ result, at: clock.now() }));
  return blogMachine.provide({
    actors: {
      admission: fromPromise<void, { blogId: string; instanceId: string }>(async () => undefined),
      ideas: fromPromise<StageOutput<Idea[]>, StageInput>(() => {
        ideasCalls += 1;
        if (options.ideasFailFirst && ideasCalls === 1) {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- stages reject with plain StageFailure JSON
          return Promise.reject({ code: 'RATE_LIMITED', message: 'slow down', retryable: true, at: clock.now() });
        }
        return Promise.resolve({ result: IDEAS, at: clock.now() });
      }),
      article: ok<Article>({ title: 'Boots', excerpt: 'Warm', markdown: '# Boots', html: '<h1>Boots</h1>' }),
      image: ok<HeaderImage>({ url: 'https://img.example/boots.png', alt: 'Boots' }),
      publish: ok<PublishedPost>({ id: 'post-1', url: 'https://store.example/boots' }),
      wait: fromPromise<void, { until: number }>(
        ({ input, signal }) =>
          new Promise<void>((resolve) => {
            const left = input.until - clock.now();
            if (left <= 0) return resolve();
            const id = clock.setTimeout(resolve, left);
            signal.addEventListener('abort', () => clock.clearTimeout(id));
          }),
      ),
    },
  });
}

/** A new blog as the supervisor would insert it: the persisted snapshot of a created, not started actor. */
function newBlog(blogId: string, instanceId = 'store-1', createdAt = new Date(T0)) {
  const actor = createActor(blogMachine, { input: inputOf(blogId, instanceId) });
  const context = actor.getSnapshot().context;
  return {
    blogId,
    instanceId,
    status: 'PENDING',
    snapshot: actor.getPersistedSnapshot(),
    machineVersion: BLOG_MACHINE_VERSION,
    view: {},
    event: { seq: 1, payload: eventPayload(context, 'PENDING', null, 1, createdAt) },
    createdAt,
  };
}

/** The write the supervisor makes for the actor's current snapshot. */
function writeOf(
  actor: Actor<BlogMachine>,
  seq: number,
  expectedVersion: number,
  events: OutboxEvent[] = [],
): BlogWrite {
  const snapshot = actor.getSnapshot();
  const status = statusOf(snapshot.value);
  return {
    blogId: snapshot.context.blogId,
    instanceId: snapshot.context.instanceId,
    expectedVersion,
    status,
    seq,
    snapshot: actor.getPersistedSnapshot(),
    machineVersion: BLOG_MACHINE_VERSION,
    view: publicFields(status, snapshot.context) as Record<string, unknown>,
    wakeAt: wakeAtOf(status, snapshot.value, snapshot.context),
    events,
  };
}

/** A write that only sets the status (and a marker snapshot), for listing and rehydration cases. */
/** `repo` whose first commit waits until `release()`: what arrives meanwhile queues for the next one. */
function holdFirstCommit(repo: BlogRepo) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let commits = 0;
  const gated: BlogRepo = {
    ...repo,
    async commit(writes) {
      if (++commits === 1) await gate;
      return repo.commit(writes);
    },
  };
  return { gated, release, commits: () => commits };
}

function statusWrite(blogId: string, status: BlogStatus, expectedVersion = 0, seq = 2, marker = 0): BlogWrite {
  return {
    blogId,
    instanceId: 'store-1',
    expectedVersion,
    status,
    seq,
    snapshot: { status: 'active', value: status, marker },
    machineVersion: BLOG_MACHINE_VERSION,
    view: {},
    wakeAt: null,
    events: [],
  };
}

const event = (seq: number, status: string): OutboxEvent => ({ seq, payload: { seq, status } });

describe.each(DRIVERS)('blog persistence on $name', (driver) => {
  describe.skipIf(!driver.available)('repository', () => {
    let database: Database;
    let repo: BlogRepo;

    async function outboxOf(blogId: string): Promise<Array<{ seq: number; payload: Record<string, unknown> }>> {
      return rowsOf<{ seq: number; payload: Record<string, unknown> }>(
        await database.db.execute(sql`select seq, payload from outbox where blog_id = ${blogId} order by id`),
      );
    }

    beforeAll(async () => {
      database = await driver.open();
      await database.migrate();
      repo = createBlogRepo(database.db);
    });
    afterAll(async () => {
      await database?.close();
    });
    beforeEach(async () => {
      await database.db.execute(sql`truncate blogs, outbox`);
    });

    describe('migrations', () => {
      it('migrates, and migrating again is harmless', async () => {
        await database.migrate();
        await database.migrate();
        const [row] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from blogs`));
        expect(row?.n).toBe(0);
        await database.ping();
      });

      it.skipIf(driver.driver !== 'pg')(
        'lets three concurrent migrate() calls on a fresh database all succeed (advisory lock)',
        async () => {
          const fresh = await requirePostgres();
          if (!fresh) return;
          const opened = [0, 1, 2].map(() => openPostgres(fresh.url, () => undefined, 2));
          try {
            await Promise.all(opened.map((d) => d.migrate()));
            const [applied] = rowsOf<{ n: number }>(
              await opened[0]!.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
            );
            // Each migration of drizzle/ applied exactly once, whichever process got there first.
            const journal = JSON.parse(
              readFileSync(new URL('../../drizzle/meta/_journal.json', import.meta.url), 'utf8'),
            ) as {
              entries: unknown[];
            };
            expect(applied?.n).toBe(journal.entries.length);
            await createBlogRepo(opened[0]!.db).insert(newBlog('after-concurrent-migrate'));
          } finally {
            await Promise.all(opened.map((d) => d.close()));
            await fresh.drop();
          }
        },
      );
    });

    describe('insert', () => {
      it('stores a new blog with its actor snapshot and its first event', async () => {
        const blog = newBlog('blog-1');
        expect(await repo.insert(blog)).toBe(true);
        const row = await repo.get('blog-1');
        expect(row).toMatchObject({
          blogId: 'blog-1',
          instanceId: 'store-1',
          status: 'PENDING',
          seq: 1,
          version: 0,
          machineVersion: BLOG_MACHINE_VERSION,
          view: {},
          wakeAt: null,
          quarantinedAt: null,
        });
        expect(row?.snapshot).toEqual(JSON.parse(JSON.stringify(blog.snapshot)));
        expect(row?.createdAt.getTime()).toBe(T0);
        expect(await outboxOf('blog-1')).toEqual([{ seq: 1, payload: blog.event.payload }]);
      });

      it('returns false for an existing blogId and changes nothing', async () => {
        await repo.insert(newBlog('blog-1'));
        const before = await repo.get('blog-1');
        const again = { ...newBlog('blog-1', 'store-2', new Date(T0 + 5000)), status: 'DONE' };
        expect(await repo.insert(again)).toBe(false);
        expect(await repo.get('blog-1')).toEqual(before);
        expect(await outboxOf('blog-1')).toHaveLength(1);
      });

      it('inserts many in one statement: only new ids, each once, each with its one first event', async () => {
        await repo.insert(newBlog('old'));
        const created = await repo.insertMany([
          newBlog('n-1'),
          newBlog('old', 'store-2'),
          newBlog('n-2', 'store-2'),
          newBlog('n-1', 'store-3'), // repeated within the batch: the first one wins
        ]);
        expect(created).toEqual(new Set(['n-1', 'n-2']));
        expect((await repo.get('n-1'))?.instanceId).toBe('store-1');
        expect((await repo.get('old'))?.instanceId).toBe('store-1');
        for (const id of ['old', 'n-1', 'n-2']) expect(await outboxOf(id)).toHaveLength(1);
        expect(await repo.insertMany([])).toEqual(new Set());
      });

      it('returns undefined for an unknown blog', async () => {
        expect(await repo.get('nope')).toBeUndefined();
      });

      it('reads many blogs by id in one go: the ones that exist, each once, whatever repeats or is missing', async () => {
        await repo.insertMany([newBlog('m-1', 'store-1'), newBlog('m-2', 'store-2'), newBlog('m-3', 'store-1')]);
        const rows = await repo.getMany(['m-2', 'nope', 'm-1', 'm-2']);
        expect(rows.map((r) => [r.blogId, r.instanceId]).sort()).toEqual([
          ['m-1', 'store-1'],
          ['m-2', 'store-2'],
        ]);
        expect(rows.find((r) => r.blogId === 'm-1')).toEqual(await repo.get('m-1'));
        expect(await repo.getMany([])).toEqual([]);
        expect(await repo.getMany(['nope'])).toEqual([]);
      });
    });

    describe('commit', () => {
      it('commits a batch of several blogs in one go: rows updated, seq set, outbox events in order', async () => {
        for (const id of ['a', 'b', 'c']) await repo.insert(newBlog(id));
        const clock = new SimulatedClock();
        clock.set(T0);
        const actor = createActor(stubbedMachine(clock), { input: inputOf('a') });
        actor.start();
        await settle();
        expect(statusOf(actor.getSnapshot().value)).toBe('AWAITING_SELECTION');

        const conflicts = await repo.commit([
          writeOf(actor, 3, 0, [event(2, 'GENERATING_IDEAS'), event(3, 'AWAITING_SELECTION')]),
          statusWrite('b', 'GENERATING_IDEAS'),
          { ...statusWrite('c', 'PENDING', 0, 1), events: [] },
        ]);
        expect(conflicts).toEqual(new Set());

        const a = await repo.get('a');
        expect(a).toMatchObject({ status: 'AWAITING_SELECTION', seq: 3, version: 1, view: { ideas: IDEAS } });
        expect(a?.wakeAt?.getTime()).toBe(T0 + SETTINGS.selectionTimeoutMs);
        expect(a?.snapshot).toEqual(JSON.parse(JSON.stringify(actor.getPersistedSnapshot())));
        expect(a!.updatedAt.getTime()).toBeGreaterThanOrEqual(a!.createdAt.getTime());
        expect(await repo.get('b')).toMatchObject({ status: 'GENERATING_IDEAS', seq: 2, version: 1 });
        expect(await repo.get('c')).toMatchObject({ status: 'PENDING', seq: 1, version: 1 });
        expect((await outboxOf('a')).map((e) => e.seq)).toEqual([1, 2, 3]);
        expect((await outboxOf('a'))[2]?.payload).toEqual({ seq: 3, status: 'AWAITING_SELECTION' });
        expect((await outboxOf('c')).map((e) => e.seq)).toEqual([1]);
        actor.stop();
      });

      it('reports a stale expectedVersion as a conflict and changes nothing of that blog', async () => {
        await repo.insert(newBlog('a'));
        await repo.insert(newBlog('b'));
        expect(
          await repo.commit([{ ...statusWrite('a', 'GENERATING_IDEAS'), events: [event(2, 'GENERATING_IDEAS')] }]),
        ).toEqual(new Set());
        const before = await repo.get('a');

        const conflicts = await repo.commit([
          { ...statusWrite('a', 'CANCELLED', 0, 3), events: [event(3, 'CANCELLED')] }, // read at version 0, row is at 1
          { ...statusWrite('b', 'GENERATING_IDEAS'), events: [event(2, 'GENERATING_IDEAS')] },
        ]);
        expect(conflicts).toEqual(new Set(['a']));
        expect(await repo.get('a')).toEqual(before);
        expect((await outboxOf('a')).map((e) => e.seq)).toEqual([1, 2]);
        // the other blog of the batch is applied
        expect(await repo.get('b')).toMatchObject({ status: 'GENERATING_IDEAS', version: 1 });
        expect((await outboxOf('b')).map((e) => e.seq)).toEqual([1, 2]);
      });

      it('reports a write for a blog that does not exist as a conflict', async () => {
        expect(await repo.commit([statusWrite('ghost', 'DONE')])).toEqual(new Set(['ghost']));
        expect(await repo.get('ghost')).toBeUndefined();
        expect(await repo.commit([])).toEqual(new Set());
      });
    });

    describe('list', () => {
      beforeEach(async () => {
        // store-1: s1-0 … s1-4 one second apart, plus s1-tie created at the same instant as s1-4; store-2: two blogs
        for (let i = 0; i < 5; i++) await repo.insert(newBlog(`s1-${i}`, 'store-1', new Date(T0 + i * 1000)));
        await repo.insert(newBlog('s1-tie', 'store-1', new Date(T0 + 4000)));
        await repo.insert(newBlog('s2-0', 'store-2', new Date(T0 + 1500)));
        await repo.insert(newBlog('s2-1', 'store-2', new Date(T0 + 10_000)));
        await repo.commit([
          statusWrite('s1-1', 'FAILED'),
          statusWrite('s1-3', 'FAILED'),
          statusWrite('s2-0', 'FAILED'),
        ]);
      });

      async function allPages(query: { instanceId?: string; status?: string }, limit: number) {
        const pages: string[][] = [];
        let cursor: { createdAt: Date; blogId: string } | undefined;
        for (;;) {
          const rows = await repo.list({ ...query, limit, ...(cursor ? { cursor } : {}) });
          if (rows.length === 0) break;
          pages.push(rows.map((r) => r.blogId));
          const last = rows.at(-1)!;
          cursor = { createdAt: last.createdAt, blogId: last.blogId };
          if (rows.length < limit) break;
        }
        return pages;
      }

      it('pages newest first by cursor, ties broken by blogId, without gaps or repeats', async () => {
        expect(await allPages({}, 3)).toEqual([
          ['s2-1', 's1-tie', 's1-4'],
          ['s1-3', 's1-2', 's2-0'],
          ['s1-1', 's1-0'],
        ]);
      });

      it('shows only one store’s blogs with instanceId', async () => {
        expect((await allPages({ instanceId: 'store-1' }, 2)).flat()).toEqual([
          's1-tie',
          's1-4',
          's1-3',
          's1-2',
          's1-1',
          's1-0',
        ]);
        expect((await allPages({ instanceId: 'store-2' }, 50)).flat()).toEqual(['s2-1', 's2-0']);
        expect(await repo.list({ instanceId: 'store-3', limit: 50 })).toEqual([]);
      });

      it('filters by status, alone or with instanceId', async () => {
        expect((await allPages({ status: 'FAILED' }, 1)).flat()).toEqual(['s1-3', 's2-0', 's1-1']);
        expect((await allPages({ status: 'FAILED', instanceId: 'store-1' }, 10)).flat()).toEqual(['s1-3', 's1-1']);
        expect((await allPages({ status: 'PENDING', instanceId: 'store-2' }, 10)).flat()).toEqual(['s2-1']);
      });
    });

    describe('loadWorking and quarantine', () => {
      const statuses = BLOG_STATUSES;

      beforeEach(async () => {
        for (const [i, status] of statuses.entries())
          await repo.insert(newBlog(status.toLowerCase(), 'store-1', new Date(T0 + i)));
        await repo.commit(statuses.filter((s) => s !== 'PENDING').map((s) => statusWrite(s.toLowerCase(), s)));
      });

      it('loads a store’s blogs that work or wait for a slot (what a new owner rehydrates), oldest first', async () => {
        expect((await repo.loadWorking(['store-1'])).map((r) => r.status)).toEqual([
          'PENDING',
          'GENERATING_IDEAS',
          'GENERATING_CONTENT',
          'GENERATING_IMAGE',
          'PUBLISHING',
        ]);
        expect(await repo.loadWorking(['store-2'])).toEqual([]);
      });

      it('hides a quarantined blog from loadWorking but keeps it readable and listed', async () => {
        await repo.quarantine('generating_image', 'store-1', `snapshot cannot be restored: ${'x'.repeat(5000)}`);
        expect((await repo.loadWorking(['store-1'])).map((r) => r.blogId)).not.toContain('generating_image');
        expect(await repo.loadWorking(['store-1'])).toHaveLength(4);
        const row = await repo.get('generating_image');
        expect(row?.quarantinedAt).toBeInstanceOf(Date);
        expect(row?.quarantineReason).toMatch(/^snapshot cannot be restored/);
        expect(row?.quarantineReason?.length).toBe(2000);
        expect((await repo.list({ limit: 50 })).map((r) => r.blogId)).toContain('generating_image');
      });
    });

    describe('persister', () => {
      it('coalesces many writes of many blogs that arrive while a commit is in flight; events land in order; latest snapshot wins', async () => {
        const ids = Array.from({ length: 30 }, (_, i) => `blog-${i}`);
        for (const [i, id] of ids.entries()) await repo.insert(newBlog(id, `store-${i % 3}`));

        const { gated, release, commits } = holdFirstCommit(repo);
        const sizes: number[] = [];
        const conflicts: string[] = [];
        const persister = createPersister(gated, {
          onConflict: (id) => conflicts.push(id),
          onRetry: (error) => {
            throw error;
          },
          onCommit: (size) => sizes.push(size),
        });
        ids.forEach((id) => persister.track(id, 0));

        const done: Array<Promise<void>> = [];
        const enqueue = (id: string, seq: number) =>
          done.push(
            persister.enqueue(
              { ...statusWrite(id, 'GENERATING_IDEAS', 0, seq, seq), instanceId: `store-${ids.indexOf(id) % 3}` },
              [event(seq, `step-${seq}`)],
            ),
          );

        enqueue('blog-0', 2);
        await settle(); // the first commit is now in flight, held at the gate
        expect(commits()).toBe(1);
        for (let seq = 3; seq <= 5; seq++) for (const id of ids) enqueue(id, seq);
        expect(persister.backlog()).toBe(30);
        await settle();
        // A small batch does not wait for the commit in flight: the other 29 blogs' writes, coalesced, went out
        // beside it; blog-0's next write waits for its own commit in flight (its version fence needs it first).
        expect(commits()).toBe(2);
        expect(persister.backlog()).toBe(1);

        release();
        await Promise.all(done);
        await persister.flush();
        expect([...sizes].sort((a, b) => a - b)).toEqual([1, 1, 29]);
        expect(conflicts).toEqual([]);
        expect(persister.backlog()).toBe(0);

        for (const id of ids) {
          const row = await repo.get(id);
          expect(row).toMatchObject({ seq: 5, snapshot: { marker: 5 }, version: id === 'blog-0' ? 2 : 1 });
          const expected = id === 'blog-0' ? [1, 2, 3, 4, 5] : [1, 3, 4, 5];
          expect((await outboxOf(id)).map((e) => e.seq)).toEqual(expected);
        }
      });

      it('sends a large backlog after the commit in flight, in one batch, rather than beside it', async () => {
        const ids = Array.from({ length: 100 }, (_, i) => `big-${i}`);
        await repo.insertMany(ids.map((id) => newBlog(id, 'store-1')));
        const { gated, release, commits } = holdFirstCommit(repo);
        const sizes: number[] = [];
        const persister = createPersister(gated, {
          onConflict: () => undefined,
          onRetry: (error) => {
            throw error;
          },
          onCommit: (size) => sizes.push(size),
        });
        ids.forEach((id) => persister.track(id, 0));
        const first = persister.enqueue(statusWrite('big-0', 'GENERATING_IDEAS'), []);
        await settle();
        const rest = ids.slice(1).map((id) => persister.enqueue(statusWrite(id, 'GENERATING_IDEAS'), []));
        await settle();
        expect(commits()).toBe(1); // 99 waiting: too many to go beside the held commit
        release();
        await Promise.all([first, ...rest]);
        expect(sizes).toEqual([1, 99]);
      });

      it('serializes a lazy snapshot only for the write that is committed, not for the writes it replaced', async () => {
        await repo.insert(newBlog('lazy', 'store-1'));
        await repo.insert(newBlog('other', 'store-1'));
        const { gated, release } = holdFirstCommit(repo);
        const persister = createPersister(gated, {
          onConflict: () => undefined,
          onRetry: (error) => {
            throw error;
          },
        });
        persister.track('lazy', 0);
        persister.track('other', 0);
        const serialized: string[] = [];
        const lazy = (marker: string) => () => (serialized.push(marker), { marker });
        const first = persister.enqueue({ ...statusWrite('other', 'GENERATING_IDEAS', 0, 2), snapshot: lazy('o') }, [
          event(2, 'GENERATING_IDEAS'),
        ]);
        await settle(); // that commit is in flight, held at the gate: the next writes wait for the one after
        const writes = [2, 3, 4].map((seq) =>
          persister.enqueue({ ...statusWrite('lazy', 'GENERATING_IDEAS', 0, seq), snapshot: lazy(`s${seq}`) }, [
            event(seq, `step-${seq}`),
          ]),
        );
        release();
        await Promise.all([first, ...writes]);
        expect(serialized).toEqual(['o', 's4']);
        expect(await repo.get('lazy')).toMatchObject({ seq: 4, snapshot: { marker: 's4' } });
        expect((await outboxOf('lazy')).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      });

      it('batches creates that arrive together into few statements; a repeated id is created once', async () => {
        let statements = 0;
        const counting: BlogRepo = {
          ...repo,
          async insertMany(list) {
            statements += 1;
            return repo.insertMany(list);
          },
        };
        const persister = createPersister(counting, { onConflict: () => undefined, onRetry: () => undefined });
        const ids = Array.from({ length: 40 }, (_, i) => `c-${i}`);
        const results = await Promise.all([
          ...ids.map((id, i) => persister.insert(newBlog(id, `store-${i % 4}`))),
          persister.insert(newBlog('c-0', 'store-9')),
        ]);
        expect(results.slice(0, 40).every(Boolean)).toBe(true);
        expect(results[40]).toBe(false);
        expect(statements).toBeLessThanOrEqual(2);
        expect((await repo.get('c-0'))?.instanceId).toBe('store-0');
        const [n] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from outbox`));
        expect(n?.n).toBe(40);
      });

      it('rejects the writes of a blog another writer moved, reports the conflict, and keeps the others', async () => {
        await repo.insert(newBlog('mine'));
        await repo.insert(newBlog('theirs'));
        await repo.commit([statusWrite('theirs', 'GENERATING_IDEAS')]); // another process wrote it
        const conflicts: string[] = [];
        const persister = createPersister(repo, { onConflict: (id) => conflicts.push(id), onRetry: () => undefined });
        persister.track('mine', 0);
        persister.track('theirs', 0);
        const theirs = persister.enqueue(statusWrite('theirs', 'CANCELLED', 0, 3), [event(3, 'CANCELLED')]);
        const mine = persister.enqueue(statusWrite('mine', 'GENERATING_IDEAS'), [event(2, 'GENERATING_IDEAS')]);
        await expect(theirs).rejects.toThrow(/another writer/);
        await expect(mine).resolves.toBeUndefined();
        expect(conflicts).toEqual(['theirs']);
        expect(await repo.get('theirs')).toMatchObject({ status: 'GENERATING_IDEAS', version: 1 });
      });

      it('retries a failed commit and drops nothing', async () => {
        await repo.insert(newBlog('a'));
        let failures = 1;
        const flaky: BlogRepo = {
          ...repo,
          async commit(writes) {
            if (failures-- > 0) throw new Error('connection reset');
            return repo.commit(writes);
          },
        };
        const retries: number[] = [];
        const persister = createPersister(flaky, {
          onConflict: () => undefined,
          onRetry: (_, attempt) => retries.push(attempt),
        });
        persister.track('a', 0);
        const first = persister.enqueue(statusWrite('a', 'GENERATING_IDEAS', 0, 2, 2), [event(2, 'GENERATING_IDEAS')]);
        await settle();
        const second = persister.enqueue(statusWrite('a', 'AWAITING_SELECTION', 0, 3, 3), [
          event(3, 'AWAITING_SELECTION'),
        ]);
        await Promise.all([first, second]);
        expect(retries).toEqual([1]);
        expect(await repo.get('a')).toMatchObject({ status: 'AWAITING_SELECTION', seq: 3, snapshot: { marker: 3 } });
        expect((await outboxOf('a')).map((e) => e.seq)).toEqual([1, 2, 3]);
      });
    });

    describe('restoring a live actor from the database', () => {
      it('continues a blog stored while AWAITING_SELECTION: the deadline holds and SELECT finishes it', async () => {
        const clock = new SimulatedClock();
        clock.set(T0);
        await repo.insert(newBlog('blog-r'));
        const first = createActor(stubbedMachine(clock), { input: inputOf('blog-r') });
        first.start();
        await settle();
        await repo.commit([writeOf(first, 3, 0)]);
        first.stop();

        const row = (await repo.get('blog-r'))!;
        expect(row.status).toBe('AWAITING_SELECTION');
        clock.increment(30_000);
        const restored = createActor(stubbedMachine(clock), { snapshot: row.snapshot as never, input: undefined });
        restored.start();
        await settle();
        expect(restored.getSnapshot().value).toBe('AWAITING_SELECTION');
        expect(Object.keys(restored.getSnapshot().children)).toEqual(['selectionTimeout']);
        expect(restored.getSnapshot().context.ideas).toEqual(IDEAS);

        restored.send({ type: 'SELECT', ideaIndex: 1, at: clock.now() });
        await settle();
        expect(restored.getSnapshot().value).toBe('DONE');
        expect(restored.getSnapshot().context).toMatchObject({ idea: IDEAS[1], post: { id: 'post-1' } });
      });

      it('continues a blog stored in backoff: it retries exactly at the stored retryAt', async () => {
        const clock = new SimulatedClock();
        clock.set(T0);
        await repo.insert(newBlog('blog-b'));
        const first = createActor(stubbedMachine(clock, { ideasFailFirst: true }), { input: inputOf('blog-b') });
        first.start();
        await settle();
        expect(first.getSnapshot().value).toEqual({ GENERATING_IDEAS: 'backoff' });
        await repo.commit([writeOf(first, 2, 0)]);
        first.stop();

        const row = (await repo.get('blog-b'))!;
        const retryAt = row.wakeAt!.getTime();
        expect(retryAt).toBe(first.getSnapshot().context.retryAt);
        const restored = createActor(stubbedMachine(clock), { snapshot: row.snapshot as never, input: undefined });
        restored.start();
        await settle();
        clock.set(retryAt - 1);
        await settle();
        expect(restored.getSnapshot().value).toEqual({ GENERATING_IDEAS: 'backoff' });
        clock.set(retryAt);
        await settle();
        expect(restored.getSnapshot().value).toBe('AWAITING_SELECTION');
        restored.stop();
      });
    });
  });
});
