/**
 * A live blog: one XState actor of the supervisor, with what it last persisted; and the pure helpers around it
 * (whether a new snapshot changes anything, whether a command applies, the order stores are rehydrated in).
 */
import type { Actor } from 'xstate';
import type { BlogContext, BlogEvent, BlogMachine, BlogRejection } from '../../machines/blog.machine';
import { IDLE_STATUSES, type BlogStatus } from '../../machines/blog.types';
import { CommandError } from '../errors';

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

/**
 * Actors of idle blogs leave memory once committed: nothing happens until a command (or, for a selection, its
 * timeout, which the lease manager's timer sweep loads in time) needs them.
 */
export const PASSIVE = IDLE_STATUSES;

/** What the supervisor reads of an emitted snapshot. */
export interface Observed {
  value: unknown;
  context: BlogContext;
  status: string;
  children: Record<string, unknown>;
}

/**
 * Whether two snapshots persist the same thing: the same state value, the very same context object (XState makes
 * a new one whenever an assign runs) and the same child actors. Cheaper than serializing both, which it replaces.
 */
export function sameState(a: Observed, b: Observed): boolean {
  if (a.context !== b.context || a.status !== b.status) return false;
  if (JSON.stringify(a.value) !== JSON.stringify(b.value)) return false;
  const ak = Object.keys(a.children);
  const bk = Object.keys(b.children);
  return ak.length === bk.length && ak.every((k) => a.children[k] === b.children[k]);
}

export const noop = () => undefined;

/** The persisted form of `snapshot`, computed only when called (returned, so no name is defined on it per call). */
export function serializeLater(machine: BlogMachine, snapshot: Observed): () => unknown {
  return () => machine.getPersistedSnapshot(snapshot as never);
}

/**
 * Sends `event` to the blog if its machine takes it, and says why not otherwise, with the contract's codes: the
 * machine decides (no copy of its rules here). An event no transition of the current state takes is
 * `INVALID_STATE`; one the machine understood but turned down (a SELECT of an idea that does not exist) comes back
 * as the rejection it emits.
 */
export function sendOrRefuse(entry: LiveBlog, event: BlogEvent): void {
  const snapshot = entry.actor.getSnapshot();
  // A blog in a final state (DONE, CANCELLED) takes no event at all, whatever its transitions would allow.
  if (snapshot.status !== 'active' || !snapshot.can(event)) {
    throw new CommandError('INVALID_STATE', `blog ${entry.blogId} is ${entry.status}: ${event.type} does not apply`);
  }
  let rejection: BlogRejection | undefined;
  const sub = entry.actor.on('rejected', (e) => (rejection = e));
  try {
    entry.actor.send(event);
  } finally {
    sub.unsubscribe();
  }
  if (rejection) throw new CommandError(rejection.code, rejection.message);
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
