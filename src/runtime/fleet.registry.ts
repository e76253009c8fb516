/**
 * The fleet registry: aggregates over every blog this process knows (counts per status and per store, transitions,
 * provider calls in flight, failures by code, limiter queues) that metrics and the dashboard read. They are held in
 * an `@xstate/store` (the library's word; here it is called the aggregates, since in Inkwell "store" means a Wix
 * site only). Per-blog facts (when a blog entered its status, its last error) live in plain maps beside the
 * aggregates: copying a map that grows with the number of blogs on every update would make each update O(n).
 */
import { createStore } from '@xstate/store';
import { BLOG_STATUSES, IDLE_STATUSES, type BlogStatus, type StageFailure } from '../../machines/blog.types';
import type { StatusChange } from './supervisor';

/** Blogs per status. */
export type StatusCounts = Record<BlogStatus, number>;

/** The aggregates, as the `@xstate/store` holds them. */
export interface FleetContext {
  byStatus: StatusCounts;
  /** Per store (`instanceId`); a store appears once it has a blog. */
  byStore: Record<string, StatusCounts>;
  transitions: number;
  /** Provider calls running now, per stage actor (`ideas`, `article`, `image`, `publish`). */
  inFlight: Record<string, number>;
  /** Blogs that entered FAILED, per error code. */
  failures: Record<string, number>;
  /** Calls waiting in each provider limiter. */
  limiterQueues: Record<string, number>;
}

/** One status change as metrics see it; `durationMs` is the time spent in `from`, when this process saw it start. */
export interface FleetTransition {
  blogId: string;
  instanceId: string;
  from: BlogStatus | null;
  to: BlogStatus;
  durationMs?: number;
  failure?: { stage: string; code: string };
}

/** One provider call event; `retryOf` is the error code that caused this attempt, for a repeated call. */
export interface FleetCall {
  stage: string;
  phase: 'start' | 'ok' | 'error';
  blogId?: string;
  attempt?: number;
  error?: StageFailure;
  retryOf?: string;
}

/** Which blog a provider call belongs to. */
export interface CallOwner {
  blogId: string;
  instanceId: string;
  attempt: number;
}

/** A row of the start-up census: how many blogs of a store are in a status. */
export interface StatusCount {
  instanceId: string;
  status: string;
  n: number;
}

const zeroCounts = (): StatusCounts => Object.fromEntries(BLOG_STATUSES.map((s) => [s, 0])) as StatusCounts;

function shift(counts: StatusCounts, from: BlogStatus | null, to: BlogStatus, by = 1): StatusCounts {
  const next = { ...counts, [to]: counts[to] + by };
  if (from) next[from] = Math.max(0, next[from] - by);
  return next;
}

const bump = (map: Record<string, number>, key: string, by: number) => ({
  ...map,
  [key]: Math.max(0, (map[key] ?? 0) + by),
});

/** The status a stage actor works in. */
export const STATUS_OF_STAGE: Record<string, BlogStatus> = {
  ideas: 'GENERATING_IDEAS',
  article: 'GENERATING_CONTENT',
  image: 'GENERATING_IMAGE',
  publish: 'PUBLISHING',
};

/** Changes fed since the aggregates were last updated; applied together, in one transition. */
interface FleetDelta {
  byStatus: Partial<Record<BlogStatus, number>>;
  transitions: number;
  inFlight: Record<string, number>;
  failures: Record<string, number>;
}

const emptyDelta = (): FleetDelta => ({ byStatus: {}, transitions: 0, inFlight: {}, failures: {} });

function addAll(map: Record<string, number>, delta: Record<string, number | undefined>): Record<string, number> {
  let next = map;
  for (const [key, by] of Object.entries(delta)) if (by) next = bump(next, key, by);
  return next;
}

function createFleetAggregates() {
  const context: Omit<FleetContext, 'byStore' | 'limiterQueues'> = {
    byStatus: zeroCounts(),
    transitions: 0,
    inFlight: {},
    failures: {},
  };
  return createStore({
    context,
    on: {
      seeded: (ctx, e: { rows: StatusCount[] }) => {
        let { byStatus } = ctx;
        for (const row of e.rows) {
          if (!BLOG_STATUSES.includes(row.status as BlogStatus)) continue;
          byStatus = shift(byStatus, null, row.status as BlogStatus, row.n);
        }
        return { ...ctx, byStatus };
      },
      changed: (ctx, e: { delta: FleetDelta }) => ({
        ...ctx,
        byStatus: addAll(ctx.byStatus, e.delta.byStatus) as StatusCounts,
        transitions: ctx.transitions + e.delta.transitions,
        inFlight: addAll(ctx.inFlight, e.delta.inFlight),
        failures: addAll(ctx.failures, e.delta.failures),
      }),
    },
  });
}

/** Creates the fleet registry; feed it with `recordStatusChange` and `recordCall`. */
export function createFleet(now: () => number = Date.now) {
  const aggregates = createFleetAggregates();
  // Status changes and calls come by the thousand per second under load: they are summed here and reach the aggregates
  // as one transition per turn of the event loop (or at once when somebody reads it), not one each.
  let delta: FleetDelta | undefined;
  const applyDelta = () => {
    if (!delta) return;
    const changed = delta;
    delta = undefined;
    aggregates.trigger.changed({ delta: changed });
  };
  const pendingDelta = (): FleetDelta => {
    if (!delta) {
      delta = emptyDelta();
      setImmediate(applyDelta);
    }
    return delta;
  };
  // Per-store counts grow with the number of stores: kept outside the aggregates and updated in place, since copying
  // them on every transition would cost O(stores) per transition (@xstate/store copies its context on each update).
  const byStore: Record<string, StatusCounts> = {};
  const countStore = (instanceId: string, from: BlogStatus | null, to: BlogStatus, by = 1) => {
    const counts = (byStore[instanceId] ??= zeroCounts());
    counts[to] += by;
    if (from) counts[from] = Math.max(0, counts[from] - by);
  };
  // Limiter queue depths change on every call queued, started and ended: set in place, not a transition each.
  const limiterQueues: Record<string, number> = {};
  /** When each working blog entered its current status (only blogs whose entry this process saw). */
  const enteredAt = new Map<string, number>();
  /** The last error code per blog while it retries a stage. */
  const lastError = new Map<string, string>();
  const transitionListeners = new Set<(t: FleetTransition) => void>();
  const callListeners = new Set<(c: FleetCall) => void>();

  return {
    aggregates,
    /** The aggregates now. */
    snapshot: (): FleetContext => {
      applyDelta();
      return { ...aggregates.getSnapshot().context, byStore, limiterQueues: { ...limiterQueues } };
    },
    /** Counts the blogs stored at start, before any change is fed. */
    seed: (rows: StatusCount[]) => {
      for (const row of rows) {
        if (BLOG_STATUSES.includes(row.status as BlogStatus))
          countStore(row.instanceId, null, row.status as BlogStatus, row.n);
      }
      aggregates.trigger.seeded({ rows });
    },
    /** Feeds one status change from the supervisor. */
    recordStatusChange(change: Pick<StatusChange, 'blogId' | 'instanceId' | 'status' | 'previousStatus' | 'context'>) {
      const at = now();
      const since = enteredAt.get(change.blogId);
      // Waiting blogs are passivated too: remembering them here would grow with every idle blog.
      const passive = IDLE_STATUSES.includes(change.status);
      if (passive) {
        enteredAt.delete(change.blogId);
        lastError.delete(change.blogId);
      } else enteredAt.set(change.blogId, at);
      const error = change.status === 'FAILED' ? change.context.error : undefined;
      countStore(change.instanceId, change.previousStatus, change.status);
      const d = pendingDelta();
      d.byStatus[change.status] = (d.byStatus[change.status] ?? 0) + 1;
      if (change.previousStatus) {
        d.byStatus[change.previousStatus] = (d.byStatus[change.previousStatus] ?? 0) - 1;
        d.transitions++;
      }
      if (error) d.failures[error.code] = (d.failures[error.code] ?? 0) + 1;
      const transition: FleetTransition = {
        blogId: change.blogId,
        instanceId: change.instanceId,
        from: change.previousStatus,
        to: change.status,
        ...(since !== undefined && change.previousStatus ? { durationMs: at - since } : {}),
        ...(error ? { failure: { stage: error.stage, code: error.code } } : {}),
      };
      for (const listener of transitionListeners) listener(transition);
    },
    /** Feeds one provider call event from the stage actors. */
    recordCall(stage: string, phase: FleetCall['phase'], owner?: CallOwner, error?: StageFailure) {
      const d = pendingDelta();
      d.inFlight[stage] = (d.inFlight[stage] ?? 0) + (phase === 'start' ? 1 : -1);
      const key = owner?.blogId; // a blog runs one stage at a time
      const retryOf =
        phase === 'start' && key && (owner?.attempt ?? 1) > 1 ? (lastError.get(key) ?? 'UNKNOWN') : undefined;
      if (key && phase === 'error' && error) lastError.set(key, error.code);
      if (key && phase === 'ok') lastError.delete(key);
      const call: FleetCall = {
        stage,
        phase,
        ...(owner ? { blogId: owner.blogId, attempt: owner.attempt } : {}),
        ...(error ? { error } : {}),
        ...(retryOf ? { retryOf } : {}),
      };
      for (const listener of callListeners) listener(call);
    },
    /** Sets how many calls wait in a provider limiter (fed by the limiters). */
    setLimiterQueue: (limiter: string, depth: number) => {
      limiterQueues[limiter] = Math.max(0, depth);
    },
    /** Follows every status change fed; returns the unsubscribe function. */
    onTransition(listener: (t: FleetTransition) => void): () => void {
      transitionListeners.add(listener);
      return () => transitionListeners.delete(listener);
    },
    /** Follows every provider call event fed; returns the unsubscribe function. */
    onCall(listener: (c: FleetCall) => void): () => void {
      callListeners.add(listener);
      return () => callListeners.delete(listener);
    },
  };
}

/** The fleet registry's interface. */
export type Fleet = ReturnType<typeof createFleet>;
