/**
 * A store shard owns its write queue (issue 18), needs PostgreSQL: the queue is stamped with the lease epoch of the
 * tenure that made it, and a lost shard's queue is closed.
 *
 * - A write queued in a tenure the database has already ended names that tenure's epoch, so the fence refuses it,
 *   even once this same process has taken the store back (same owner name, new epoch). Naming the epoch the
 *   process holds when the batch is built (what the persister did before) lets that stale write land.
 * - A store lost here: the transition its blog just queued is refused at once, with no round trip to the database
 *   (the supervisor closes the shard's queue when the shard is lost). Without that, the write is committed, though
 *   its store is no longer this process's.
 * - Setting a blog aside (quarantine) is fenced like the rest: a process that does not hold the store at the epoch it
 *   names leaves the blog as it is.
 */
import { fromPromise } from 'xstate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { blogMachine } from '../../machines/blog.machine';
import { createBlogRepo, type BlogRepo } from '../../src/db/blog.repo';
import { createLeaseRepo, type LeaseRepo } from '../../src/db/lease.repo';
import type { Database } from '../../src/db/database';
import { openPostgres } from '../../src/db/pg.client';
import { ConflictError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createPersister } from '../../src/runtime/persister';
import { createShards } from '../../src/runtime/store.shard';
import { createSupervisor } from '../../src/runtime/supervisor';
import { newBlog, writeOf } from '../support/blog.rows';
import { describeWithPostgres } from '../support/servers';

const quiet = { onConflict: () => undefined, onRetry: () => undefined };

await describeWithPostgres('the write queue of a store shard (needs PostgreSQL)', (pg) => {
  let database: Database;
  let leases: LeaseRepo;
  beforeAll(async () => {
    database = openPostgres(pg().url, () => undefined, 4);
    await database.migrate();
    leases = createLeaseRepo(database.db, 'node-a', 60_000);
  });
  afterAll(async () => {
    await database.close();
  });
  const markerOf = async (repo: BlogRepo, blogId: string) =>
    ((await repo.get(blogId))?.snapshot as { marker?: string } | undefined)?.marker;

  it('refuses a write queued in an ended tenure, even after this process took the store back', async () => {
    const shards = createShards({ ttlMs: 60_000 });
    const repo = createBlogRepo(database.db, { owner: 'node-a', epochOf: shards.epochOf });
    const persister = createPersister(repo, quiet);
    expect(await leases.claim('sw-1')).toMatchObject({ epoch: 1 });
    const first = shards.take('sw-1', 1, Date.now());
    expect(await persister.insert(newBlog('w1', 'sw-1', first.writes.epoch))).toBe(true);
    persister.track('w1', 0);

    // The store changes hands in the database (given back, taken again: epoch 2) before this process notices;
    // then it takes the store itself at the new epoch, all before the old tenure's queued write is committed.
    await leases.release(['sw-1']);
    expect(await leases.claim('sw-1')).toMatchObject({ held: true, epoch: 2 });
    const stale = persister.enqueue(writeOf('w1', 'sw-1', 0, 'old tenure'), [], first.writes);
    shards.lose('sw-1');
    const second = shards.take('sw-1', 2, Date.now());
    await expect(stale).rejects.toThrow();
    expect(await markerOf(repo, 'w1')).toBe('created');

    persister.track('w1', 0);
    await persister.enqueue(writeOf('w1', 'sw-1', 0, 'new tenure'), [], second.writes);
    expect(await markerOf(repo, 'w1')).toBe('new tenure');
  }, 20_000);

  it('a lost store’s queued transition is refused at once, without a round trip', async () => {
    expect(await leases.claim('sw-2')).toMatchObject({ epoch: 1 });
    const shards = createShards({ ttlMs: 60_000 });
    shards.take('sw-2', 1, Date.now());
    const repo = createBlogRepo(database.db, { owner: 'node-a', epochOf: shards.epochOf });
    let commits = 0;
    const counted: BlogRepo = {
      ...repo,
      commit: (writes) => {
        commits++;
        return repo.commit(writes);
      },
    };
    const persister = createPersister(counted, quiet);
    // An admission that never comes: the blog waits in PENDING until it is cancelled.
    const admission = fromPromise<void, { blogId: string; instanceId: string }>(() => new Promise(() => undefined));
    const machine = blogMachine.provide({ actors: { admission } });
    const supervisor = createSupervisor({
      machine,
      repo: counted,
      persister,
      shards,
      log: createLogger('silent', 'node-a'),
    });
    const input = { blogId: 'w2', instanceId: 'sw-2', request: { topic: 'lost store' } };
    expect((await supervisor.create(input as never)).created).toBe(true);
    await supervisor.flush();
    const before = commits;
    const entry = (await supervisor.load('w2', 'sw-2'))!;
    const cancelled = supervisor.send(entry, { type: 'CANCEL', at: Date.now() });
    shards.lose('sw-2'); // in the same turn: the CANCELLED transition is still in the shard's queue
    await expect(cancelled).rejects.toBeInstanceOf(ConflictError);
    await supervisor.flush();
    expect(commits).toBe(before);
    expect((await repo.get('w2'))?.status).toBe('PENDING');
  }, 20_000);

  it('quarantines a blog only for the store’s current tenure', async () => {
    expect(await leases.claim('sw-3')).toMatchObject({ epoch: 1 });
    let epoch: number | undefined = 1;
    const repo = createBlogRepo(database.db, { owner: 'node-a', epochOf: () => epoch });
    expect(await repo.insert(newBlog('w3', 'sw-3', 1))).toBe(true);
    epoch = 7; // a tenure the lease row does not have
    await repo.quarantine('w3', 'sw-3', 'stale tenure');
    expect((await repo.get('w3'))?.quarantinedAt).toBeNull();
    epoch = undefined; // not held here
    await repo.quarantine('w3', 'sw-3', 'not held');
    expect((await repo.get('w3'))?.quarantinedAt).toBeNull();
    epoch = 1;
    await repo.quarantine('w3', 'sw-3', 'current tenure');
    expect((await repo.get('w3'))?.quarantineReason).toBe('current tenure');
  }, 20_000);
});
