/**
 * A store's write queue: the transitions of its blogs waiting for their commit. The store's shard holds it, made
 * when the store was taken, stamped with the lease epoch of that tenure: every write that leaves it names that epoch,
 * so a write queued before the store was lost can never commit under a later tenure, even this process's own (the
 * fence in `blog.repo.ts` compares it with the lease row). A lost store's queue is closed: what it still holds is
 * refused without a round trip, and nothing more is queued on it. The persister drains the queues of all stores
 * together, so one commit still carries many stores' transitions.
 */
import type { BlogWrite, OutboxEvent } from '../db/blog.port';
import { ConflictError } from '../errors';

/**
 * A transition to persist; the persister fills in the version fence. `snapshot` may be a function: it is called
 * only if this write is still the blog's latest when its batch is built, so the several transitions an actor takes
 * between two commits are serialized once, not once each.
 */
export type PendingWrite = Omit<BlogWrite, 'expectedVersion' | 'events' | 'epoch'>;

/** A blog's writes in a queue: the latest snapshot, every event in order, everyone waiting for the commit. */
export interface QueuedWrite {
  write: PendingWrite;
  events: OutboxEvent[];
  waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
  queue: WriteQueue;
}

/** One store's write queue. */
export interface WriteQueue {
  readonly instanceId: string;
  /** The lease epoch its writes name; undefined when the store is held without leases (the repo's fence decides). */
  readonly epoch: number | undefined;
  /** Writes waiting for a commit, oldest first, one entry per blog. */
  pending: Map<string, QueuedWrite>;
  /** The store was lost: nothing is queued on it or committed from it any more. */
  closed: boolean;
}

/** A new, open queue for a store taken at `epoch`. */
export const createWriteQueue = (instanceId: string, epoch?: number): WriteQueue => ({
  instanceId,
  epoch,
  pending: new Map(),
  closed: false,
});

/** Why a closed queue's writes were refused: the store is no longer held here (retryable: its new owner goes on). */
export const lostStore = (queue: WriteQueue): ConflictError =>
  new ConflictError(`store ${queue.instanceId} is no longer held here: its transition was not committed`);

/** Adds a newer entry for `blogId`: its snapshot wins, events and waiters queue behind the older ones. */
export function mergeWrite(target: Map<string, QueuedWrite>, blogId: string, entry: QueuedWrite): void {
  const existing = target.get(blogId);
  if (!existing) {
    target.set(blogId, entry);
    return;
  }
  existing.write = entry.write;
  existing.events.push(...entry.events);
  existing.waiters.push(...entry.waiters);
}
