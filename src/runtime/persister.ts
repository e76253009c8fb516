/**
 * Write-behind of actor transitions. Each store's transitions wait in its own write queue (`write.queue.ts`, held by
 * its shard and stamped with its lease epoch); the persister drains the queues of all stores together: transitions
 * of many actors that arrive while a commit is in flight are coalesced (latest snapshot per blog, every event kept in
 * order) and committed together in one transaction, taken from the stores' queues in turn. That is what lets the
 * runtime go beyond one row UPDATE per transition. A small batch may start beside the commit in flight (see
 * MAX_IN_FLIGHT), never with a blog that is already in it. A failed commit (database down) is retried with backoff;
 * nothing is dropped, except the writes of a store lost meanwhile (refused: they are its new owner's to make).
 * New blogs are batched the same way (`insert.batcher.ts`).
 */
import type { BlogRepo, BlogWrite, OutboxEvent } from '../db/blog.port';
import { createInsertBatcher } from './insert.batcher';
import {
  createWriteQueue,
  lostStore,
  mergeWrite,
  type PendingWrite,
  type QueuedWrite,
  type WriteQueue,
} from './write.queue';

export type { PendingWrite } from './write.queue';

const materialize = (snapshot: unknown): unknown => (typeof snapshot === 'function' ? snapshot() : snapshot);

/** Callbacks of the persister. */
export interface PersisterHooks {
  /** Another writer moved the row: this process must drop the actor. */
  onConflict(blogId: string): void;
  /** A commit failed and will be retried. */
  onRetry(error: unknown, attempt: number): void;
  /** A batch was committed. */
  onCommit?(size: number, ms: number, events: number): void;
  /** The status events a commit made durable, in order per blog (none of a write another writer beat). */
  onCommitted?(events: CommittedEvent[]): void;
}

/** A status event as committed. */
export interface CommittedEvent extends OutboxEvent {
  blogId: string;
  instanceId: string;
}

const MAX_BATCH = 500;
/**
 * Commits in flight at once. A small batch starts beside the commit in flight instead of waiting for it, so a
 * transition waits for its own commit only, and one slow commit does not hold up every actor behind it (PostgreSQL
 * flushes the WAL of concurrent commits together). Each blog is in at most one commit in flight: its version fence
 * and the order of its events need the previous one committed first.
 */
const MAX_IN_FLIGHT = 2;
/**
 * A backlog larger than this waits for the commit in flight and then goes in one full batch: when the database is
 * the bottleneck, fewer and fuller statements carry the most transitions.
 */
const SMALL_BACKLOG = 64;

/** Creates the persister over `repo`. */
export function createPersister(repo: BlogRepo, hooks: PersisterHooks) {
  const versions = new Map<string, number>();
  /** Queues with writes waiting, in the order their turn comes: a queue partly taken goes to the back. */
  let ready = new Set<WriteQueue>();
  /** Every blog with a write waiting, and its queue. */
  const waiting = new Map<string, WriteQueue>();
  /** Queues of stores written without a shard (a supervisor without leases, tests), one per store, kept. */
  const unsharded = new Map<string, WriteQueue>();
  let inFlight = 0;
  /** Blogs whose write is in a commit in flight. */
  const committing = new Set<string>();
  /** After a failed commit, nothing goes out until its retry. */
  let paused = false;
  /** Dropped while a write was queued or in flight: forgotten once that write is done. */
  const forgotten = new Set<string>();
  let failures = 0;
  /** Blogs whose last commit failed without an answer (the database went away): it may have landed all the same. */
  const unanswered = new Set<string>();
  const idle: Array<() => void> = [];
  const unshardedQueue = (instanceId: string): WriteQueue => {
    const queue = unsharded.get(instanceId) ?? createWriteQueue(instanceId);
    unsharded.set(instanceId, queue);
    return queue;
  };
  const insert = createInsertBatcher(repo);

  function add(entry: QueuedWrite) {
    const { queue } = entry;
    mergeWrite(queue.pending, entry.write.blogId, entry);
    waiting.set(entry.write.blogId, queue);
    ready.add(queue);
  }

  /** Refuses what a closed queue holds (its store was lost): its waiters hear so, nothing goes to the database. */
  function refuse(entries: Iterable<QueuedWrite>) {
    for (const e of entries) {
      const { blogId } = e.write;
      if (waiting.get(blogId) === e.queue) waiting.delete(blogId);
      // Its version is the old tenure's; a blog that a new tenure tracks since (after a failed commit) keeps its own.
      if (forgotten.delete(blogId) && !committing.has(blogId) && !waiting.has(blogId)) versions.delete(blogId);
      e.waiters.forEach((w) => w.reject(lostStore(e.queue)));
    }
  }

  /** Puts `entries` back in front of their queues, before any newer writes of the same blogs: events keep order. */
  function requeueInFront(entries: Map<string, QueuedWrite>) {
    const front = new Set<WriteQueue>();
    for (const e of entries.values()) {
      if (e.queue.closed) refuse([e]);
      else if (!front.has(e.queue)) {
        front.add(e.queue);
        const rest = e.queue.pending;
        e.queue.pending = new Map();
        for (const r of entries.values()) if (r.queue === e.queue) add(r);
        for (const r of rest.values()) add(r);
      }
    }
    ready = new Set([...front, ...ready]);
  }

  /**
   * Of the conflicting blogs whose previous commit got no answer, those whose row is exactly one version past the one
   * we wrote against: that commit landed (the lease fence lets no one else write them). Undefined: cannot tell now.
   */
  async function landedUnanswered(conflicts: Set<string>, writes: BlogWrite[]): Promise<Set<string> | undefined> {
    const expected = new Map(writes.map((w) => [w.blogId, w.expectedVersion]));
    const ids = [...conflicts].filter((id) => unanswered.has(id));
    if (ids.length === 0) return new Set();
    const rows = await repo.getMany(ids).catch(() => undefined);
    if (!rows) return undefined;
    return new Set(rows.filter((r) => r.version === (expected.get(r.blogId) ?? -2) + 1).map((r) => r.blogId));
  }

  async function commitBatch(batch: Map<string, QueuedWrite>) {
    const writes: BlogWrite[] = [...batch.entries()].map(([blogId, e]) => ({
      ...e.write,
      snapshot: materialize(e.write.snapshot),
      events: e.events,
      expectedVersion: versions.get(blogId) ?? 0,
      ...(e.queue.epoch !== undefined ? { epoch: e.queue.epoch } : {}),
    }));
    const started = Date.now();
    const conflicts = await repo.commit(writes);
    const events = writes.reduce((n, w) => n + w.events.length, 0);
    hooks.onCommit?.(writes.length, Date.now() - started, events);
    // A commit whose answer an outage lost may have landed: then this "conflict" is our own write. Such writes go
    // again on the version it made (their events too: the outbox keeps one row per seq), not dropped as lost.
    if (hooks.onCommitted && events > 0) {
      const done = writes.filter((w) => !conflicts.has(w.blogId));
      hooks.onCommitted(
        done.flatMap((w) => w.events.map((e) => ({ ...e, blogId: w.blogId, instanceId: w.instanceId }))),
      );
    }
    const landed = await landedUnanswered(conflicts, writes);
    const again = new Map<string, QueuedWrite>();
    for (const [blogId, e] of batch) {
      committing.delete(blogId);
      if (conflicts.has(blogId) && unanswered.has(blogId) && landed?.has(blogId) !== false) {
        if (landed) {
          unanswered.delete(blogId);
          versions.set(blogId, (versions.get(blogId) ?? 0) + 1);
        }
        again.set(blogId, e);
        continue;
      }
      unanswered.delete(blogId);
      if (conflicts.has(blogId)) {
        versions.delete(blogId);
        e.waiters.forEach((w) => w.reject(new Error(`blog ${blogId} was changed by another writer`)));
        hooks.onConflict(blogId);
      } else {
        versions.set(blogId, (versions.get(blogId) ?? 0) + 1);
        e.waiters.forEach((w) => w.resolve());
      }
      if (forgotten.has(blogId) && !waiting.has(blogId)) {
        forgotten.delete(blogId);
        versions.delete(blogId);
      }
    }
    if (again.size > 0) requeueInFront(again);
  }

  /**
   * The next batch: waiting writes of blogs with no commit in flight, at most MAX_BATCH, taken from the stores'
   * queues in turn (oldest first within each), each write naming its queue's epoch.
   */
  function takeBatch(): Map<string, QueuedWrite> {
    const batch = new Map<string, QueuedWrite>();
    for (const queue of [...ready]) {
      if (batch.size >= MAX_BATCH) break;
      for (const [blogId, e] of queue.pending) {
        if (batch.size >= MAX_BATCH) break;
        if (committing.has(blogId) || batch.has(blogId)) continue;
        batch.set(blogId, e);
        queue.pending.delete(blogId);
        waiting.delete(blogId);
        committing.add(blogId);
      }
      ready.delete(queue);
      if (queue.pending.size > 0) ready.add(queue); // its turn again after the others'
    }
    return batch;
  }

  function pump() {
    while (!paused && inFlight < MAX_IN_FLIGHT && waiting.size > 0) {
      if (inFlight > 0 && waiting.size > SMALL_BACKLOG) break;
      const batch = takeBatch();
      if (batch.size === 0) break; // every pending blog has a commit in flight: its end pumps again
      inFlight++;
      commitBatch(batch).then(
        () => {
          inFlight--;
          failures = 0;
          // Yield first: lets other actors run and queue their transitions, so the next commit carries more.
          setImmediate(pump);
        },
        (error: unknown) => {
          inFlight--;
          failures++;
          hooks.onRetry(error, failures);
          for (const blogId of batch.keys()) {
            committing.delete(blogId);
            unanswered.add(blogId);
          }
          requeueInFront(batch);
          const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
          if (paused) return; // another failed commit already set the retry
          paused = true;
          setTimeout(() => {
            paused = false;
            pump();
          }, delay).unref();
        },
      );
    }
    if (inFlight === 0 && waiting.size === 0) idle.splice(0).forEach((f) => f());
  }

  return {
    /** Starts tracking a blog at the version its row has now. */
    track(blogId: string, version: number) {
      forgotten.delete(blogId);
      versions.set(blogId, version);
    },
    /** Stops tracking (the actor was dropped); pending writes still go out. */
    forget(blogId: string) {
      // A write still queued or in flight needs the version; the next `track` sets it anew anyway.
      if (!waiting.has(blogId) && !committing.has(blogId)) versions.delete(blogId);
      else forgotten.add(blogId);
    },
    /**
     * Queues a transition on its store's queue (the shard's; without one, the store's own here); resolves when it
     * is committed, rejects if another writer won or the store was lost first.
     */
    enqueue(write: PendingWrite, events: OutboxEvent[], queue = unshardedQueue(write.instanceId)): Promise<void> {
      if (queue.closed) return Promise.reject(lostStore(queue));
      return new Promise((resolve, reject) => {
        add({ write, events, waiters: [{ resolve, reject }], queue });
        setImmediate(pump);
      });
    },
    /** The store of `queue` was lost: what it holds is refused now, and so is anything queued on it later. */
    close(queue: WriteQueue) {
      queue.closed = true;
      const entries = [...queue.pending.values()];
      queue.pending = new Map();
      ready.delete(queue);
      refuse(entries);
      if (inFlight === 0 && waiting.size === 0) idle.splice(0).forEach((f) => f());
    },
    /** Inserts a new blog with its first event (batched with other creates); `false` when the id exists. */
    insert,
    /** Resolves when everything queued so far is committed. */
    flush(): Promise<void> {
      if (inFlight === 0 && waiting.size === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
    /** Blogs with writes waiting for the next commit. */
    backlog: () => waiting.size,
  };
}

/** The persister's interface. */
export type Persister = ReturnType<typeof createPersister>;
