/**
 * The supervisor's port (what the intake and the lease manager use of it, implemented by `supervisor.ts`) and a live
 * blog: one XState actor, held on its store's shard, with what it last persisted; and the order stores are
 * rehydrated in.
 */
import type { Actor } from 'xstate';
import type { BlogContext, BlogEvent, BlogInput, BlogMachine, BlogRejection } from '../../machines/blog.machine';
import { CommandError } from '../errors';
import type { BlogView } from './blog.view';
import type { BlogStatus } from '../../machines/blog.types';
import type { WriteQueue } from './write.queue';

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
  /** Its store's write queue, of the tenure it was made in (its shard's): its transitions go there. */
  writes: WriteQueue;
  unsubscribe: () => void;
}

/** The supervisor: one live XState actor per working blog, on its store's shard; its transitions persisted. */
export interface Supervisor {
  /** Creates and starts a blog; `created: false` (and nothing changes) when the id exists already. */
  create(input: BlogInput, createdAt?: Date): Promise<{ created: boolean; createdAt: Date }>;
  /** Restores stores' working blogs that are not live here (their leases were just taken); counts per store. */
  rehydrateStores(instanceIds: string[]): Promise<Map<string, number>>;
  /** Drops a store's actors without persisting anything: its lease is lost, another process continues. */
  dropStore(instanceId: string): number;
  /** The live actor of a blog, loaded when it left memory; refused (retryably) when its store is not held here. */
  load(blogId: string, instanceId?: string): Promise<LiveBlog | undefined>;
  /** Sends an event (with `refuse`, a command's: the machine decides); resolves once its transition is committed. */
  send(entry: LiveBlog, event: BlogEvent, refuse?: boolean): Promise<BlogView>;
  /** Resolves once the blog's transitions so far are committed; rejects if it is not (or no longer) live here. */
  committed(blogId: string, instanceId: string): Promise<void>;
  /** Waits until every transition observed so far is committed. */
  flush(): Promise<void>;
  /** Stops every actor without persisting the stop. */
  stopAll(): Promise<void>;
  /** Live actors now. */
  size(): number;
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
