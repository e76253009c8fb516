/**
 * Write-behind of actor transitions. Transitions of many actors that arrive while a commit is in flight are
 * coalesced (latest snapshot per blog, every event kept in order) and committed together in one transaction:
 * that is what lets the runtime go beyond one row UPDATE per transition. A small batch may start beside the commit
 * in flight (see MAX_IN_FLIGHT), never with a blog that is already in it. A failed commit (database down) is retried
 * with backoff; nothing is dropped.
 *
 * New blogs are batched the same way: creates that arrive while an insert is in flight go out together in the next
 * one (one statement), so a burst of creates costs a few round trips and commits, not one each. A failed insert is
 * not retried here: its callers get the error (the command was not applied and is answered or redelivered).
 */
import type { BlogRepo, BlogWrite, NewBlog, OutboxEvent } from '../db/blog.port';
import { ConflictError } from '../errors';

/**
 * A transition to persist; the persister fills in the version fence. `snapshot` may be a function: it is called
 * only if this write is still the blog's latest when its batch is built, so the several transitions an actor takes
 * between two commits are serialized once, not once each.
 */
export type PendingWrite = Omit<BlogWrite, 'expectedVersion' | 'events'>;

const materialize = (snapshot: unknown): unknown => (typeof snapshot === 'function' ? snapshot() : snapshot);

interface Entry {
  write: PendingWrite;
  events: OutboxEvent[];
  waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

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
  let pending = new Map<string, Entry>();
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
  const inserts: Array<{ blog: NewBlog; resolve: (created: boolean) => void; reject: (e: unknown) => void }> = [];
  let inserting = false;

  function pumpInserts() {
    if (inserting || inserts.length === 0) return;
    const batch = inserts.splice(0, MAX_BATCH);
    inserting = true;
    const fenced = new Set<string>();
    repo
      .insertMany(
        batch.map((i) => i.blog),
        fenced,
      )
      .then(
        (created) => {
          inserting = false;
          // Within a batch only the first create of an id wins, as it would one after the other.
          const claimed = new Set<string>();
          for (const i of batch) {
            if (fenced.has(i.blog.blogId)) {
              i.reject(new ConflictError(`store ${i.blog.instanceId} is no longer held here: nothing was created`));
              continue;
            }
            const won = created.has(i.blog.blogId) && !claimed.has(i.blog.blogId);
            if (won) claimed.add(i.blog.blogId);
            i.resolve(won);
          }
          setImmediate(pumpInserts);
        },
        (error: unknown) => {
          inserting = false;
          batch.forEach((i) => i.reject(error));
          setImmediate(pumpInserts);
        },
      );
  }

  /** Adds a newer entry for `blogId`: its snapshot wins, events and waiters queue behind the older ones. */
  function merge(target: Map<string, Entry>, blogId: string, entry: Entry) {
    const existing = target.get(blogId);
    if (!existing) {
      target.set(blogId, entry);
      return;
    }
    existing.write = entry.write;
    existing.events.push(...entry.events);
    existing.waiters.push(...entry.waiters);
  }

  /** Puts `entries` back in front of any newer writes of the same blogs, so their events keep their order. */
  function requeueInFront(entries: Map<string, Entry>) {
    const rest = pending;
    pending = entries;
    for (const [blogId, e] of rest) merge(pending, blogId, e);
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

  async function commitBatch(batch: Map<string, Entry>) {
    const writes: BlogWrite[] = [...batch.entries()].map(([blogId, e]) => ({
      ...e.write,
      snapshot: materialize(e.write.snapshot),
      events: e.events,
      expectedVersion: versions.get(blogId) ?? 0,
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
    const again = new Map<string, Entry>();
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
      if (forgotten.has(blogId) && !pending.has(blogId)) {
        forgotten.delete(blogId);
        versions.delete(blogId);
      }
    }
    if (again.size > 0) requeueInFront(again);
  }

  /** The next batch: pending writes of blogs with no commit in flight, oldest first, at most MAX_BATCH. */
  function takeBatch(): Map<string, Entry> {
    const batch = new Map<string, Entry>();
    for (const [blogId, e] of pending) {
      if (batch.size >= MAX_BATCH) break;
      if (!committing.has(blogId)) batch.set(blogId, e);
    }
    for (const blogId of batch.keys()) {
      pending.delete(blogId);
      committing.add(blogId);
    }
    return batch;
  }

  function pump() {
    while (!paused && inFlight < MAX_IN_FLIGHT && pending.size > 0) {
      if (inFlight > 0 && pending.size > SMALL_BACKLOG) break;
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
    if (inFlight === 0 && pending.size === 0) idle.splice(0).forEach((f) => f());
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
      if (!pending.has(blogId) && !committing.has(blogId)) versions.delete(blogId);
      else forgotten.add(blogId);
    },
    /** Queues a transition; resolves when it is committed, rejects if another writer won. */
    enqueue(write: PendingWrite, events: OutboxEvent[]): Promise<void> {
      return new Promise((resolve, reject) => {
        merge(pending, write.blogId, { write, events, waiters: [{ resolve, reject }] });
        setImmediate(pump);
      });
    },
    /** Inserts a new blog with its first event (batched with other creates); `false` when the id exists. */
    insert(blog: NewBlog): Promise<boolean> {
      return new Promise((resolve, reject) => {
        inserts.push({ blog, resolve, reject });
        setImmediate(pumpInserts);
      });
    },
    /** Resolves when everything queued so far is committed. */
    flush(): Promise<void> {
      if (inFlight === 0 && pending.size === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
    /** Blogs with writes waiting for the next commit. */
    backlog: () => pending.size,
  };
}

/** The persister's interface. */
export type Persister = ReturnType<typeof createPersister>;
