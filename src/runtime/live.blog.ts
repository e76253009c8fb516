/**
 * A live blog: one XState actor, held on its store's shard, with what it last persisted; and the order stores are
 * rehydrated in.
 */
import type { Actor } from 'xstate';
import type { BlogContext, BlogMachine } from '../../machines/blog.machine';
import type { BlogStatus } from '../../machines/blog.types';

/** A live blog actor held by the supervisor. */
export interface LiveBlog {
  actor: Actor<BlogMachine>;
  blogId: string;
  instanceId: string;
  status: BlogStatus;
  seq: number;
  createdAt: Date;
  /** The snapshot last persisted (or restored): a new one that changes nothing is not written again. */
  lastSnapshot: Observed | undefined;
  lastCommit: Promise<void>;
  unsubscribe: () => void;
}

/** A status change as the supervisor observed it (for metrics, the demo, the dashboard). */
export interface StatusChange {
  blogId: string;
  instanceId: string;
  status: BlogStatus;
  previousStatus: BlogStatus | null;
  seq: number;
  context: BlogContext;
}

/** What the supervisor reads of an emitted snapshot. */
export interface Observed {
  value: unknown;
  context: BlogContext;
  status: string;
  children: Record<string, unknown>;
}

/** Orders rows round-robin across stores, keeping each store's own order. */
export function interleaveByStore<T extends { instanceId: string }>(rows: T[]): T[] {
  const queues = new Map<string, T[]>();
  for (const row of rows) {
    const q = queues.get(row.instanceId) ?? [];
    q.push(row);
    queues.set(row.instanceId, q);
  }
  const out: T[] = [];
  while (queues.size > 0) {
    for (const [store, q] of queues) {
      out.push(q.shift()!);
      if (q.length === 0) queues.delete(store);
    }
  }
  return out;
}
