/**
 * The lease manager: which stores this process advances. Every `ttl/3` it renews its leases (dropping the
 * actors of any store it lost), takes over stores whose owner went silent (rehydrating their working blogs),
 * loads waiting blogs whose selection timeout is near, and gives back stores it no longer has work for.
 */
import { ownershipTimings } from './ownership.timing';
import type { LeaseRepo } from '../db/lease.repo';
import type { Logger } from '../logger';
import type { Supervisor } from './live.blog';
import { busy, createShards, type Route, type Shards } from './store.shard';

export type { Route } from './store.shard';

/** Creates the manager; nothing runs until `start()`. */
export function createLeaseManager(deps: {
  repo: LeaseRepo;
  /** What the lease manager asks of the supervisor: restore a store's blogs, drop them, load a blog due. */
  supervisor: Pick<Supervisor, 'rehydrateStores' | 'dropStore' | 'load'>;
  log: Logger;
  ttlMs: number;
  onChange?: (held: number) => void;
  /** The held stores; made here when not given. */
  shards?: Shards;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const shards = deps.shards ?? createShards({ ttlMs: deps.ttlMs, now });
  const tickMs = ownershipTimings(deps.ttlMs).renewEveryMs;
  const horizonMs = Math.max(2 * tickMs, 10_000);
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let stopped = false;

  const claiming = new Map<string, Promise<Route>>();
  /**
   * Stores being given back (idle), until the release is committed: a claim waits for it. Claimed meanwhile, the
   * row (still ours, same epoch) would be taken at that epoch, then the release would clear it under the new shard.
   */
  const releasing = new Map<string, Promise<void>>();
  /** Claims waiting for the next batch: a burst of commands for new stores costs one statement, not one each. */
  let queued: Array<{ instanceId: string; resolve: (route: Route) => void; reject: (e: unknown) => void }> = [];
  let flushing = false;

  /** Holds `instanceId` if nobody live does (rehydrating it on a takeover); else says who does. */
  function ensure(instanceId: string): Promise<Route> {
    if (shards.has(instanceId)) return Promise.resolve({ mine: true });
    const pending = claiming.get(instanceId);
    if (pending) return pending;
    const released = releasing.get(instanceId);
    const claim = () =>
      new Promise<Route>((resolve, reject) => {
        queued.push({ instanceId, resolve, reject });
        if (queued.length === 1) setImmediate(() => void flush());
      });
    const promise = (released ? released.then(claim, claim) : claim()).finally(() => claiming.delete(instanceId));
    claiming.set(instanceId, promise);
    return promise;
  }

  async function flush(): Promise<void> {
    if (flushing || queued.length === 0) return;
    flushing = true;
    const batch = queued;
    queued = [];
    const held: string[] = [];
    try {
      if (stopped) {
        batch.forEach((c) => c.resolve({ mine: false, owner: 'nobody (stopping)' }));
        return;
      }
      const startedAt = now();
      const claims = await deps.repo.claimMany(batch.map((c) => c.instanceId));
      for (const [id, claim] of claims) {
        if (!claim.held) continue;
        held.push(id);
        shards.take(id, claim.epoch, startedAt);
      }
      if (held.length > 0) deps.onChange?.(shards.size());
      const restored = await deps.supervisor.rehydrateStores(held);
      for (const c of batch) {
        const claim = claims.get(c.instanceId);
        if (!claim) c.reject(new Error(`no lease answer for store ${c.instanceId}`));
        else if (!claim.held) c.resolve({ mine: false, owner: claim.owner });
        else {
          const n = restored.get(c.instanceId) ?? 0;
          if (claim.takeover && n > 0) deps.log.info({ instanceId: c.instanceId, restored: n }, 'took over store');
          c.resolve({ mine: true });
        }
      }
    } catch (error) {
      // Not rehydrated: not ours yet. The next command claims (its lease row is still ours) and rehydrates again.
      held.forEach((id) => shards.lose(id));
      batch.forEach((c) => c.reject(error));
    } finally {
      flushing = false;
      if (queued.length > 0) setImmediate(() => void flush());
    }
  }

  // A lost store's actors stop here, without persisting anything: another process continues its blogs.
  shards.onLost((instanceId) => {
    const dropped = deps.supervisor.dropStore(instanceId);
    if (dropped > 0) deps.log.warn({ instanceId, dropped }, 'store lease lost; its blogs continue in another process');
  });

  async function renew() {
    const startedAt = now();
    const ids = shards.ids();
    const held = await deps.repo.renew(ids);
    for (const instanceId of ids) {
      if (held.has(instanceId)) shards.renewed(instanceId, startedAt);
      else shards.lose(instanceId);
    }
  }

  // Commands of a store wait for its claim here (the shards' `route`), then run in its shard's queue.
  shards.claimWith({ claim: ensure, stopping: () => stopped });

  async function releaseIdle() {
    const at = now();
    const release: string[] = [];
    for (const shard of shards.all()) {
      // A store with live actors or commands queued or in progress is busy: it is never released as idle.
      if (busy(shard)) shard.idleSince = undefined;
      else if (shard.idleSince === undefined) shard.idleSince = at;
      else if (at - shard.idleSince >= tickMs) release.push(shard.instanceId);
    }
    if (release.length === 0) return;
    release.forEach((s) => shards.lose(s));
    const done = deps.repo.release(release);
    for (const id of release) releasing.set(id, done);
    try {
      await done;
    } finally {
      for (const id of release) if (releasing.get(id) === done) releasing.delete(id);
    }
  }

  async function tick() {
    await renew();
    await Promise.all((await deps.repo.orphans()).map(ensure)); // one batch of claims
    for (const due of await deps.repo.dueTimers(horizonMs)) {
      if ((await ensure(due.instanceId)).mine) await deps.supervisor.load(due.blogId, due.instanceId);
    }
    await releaseIdle();
    deps.onChange?.(shards.size());
  }

  function schedule() {
    timer = setTimeout(() => {
      ticking = tick()
        .catch((err: unknown) => deps.log.error({ err }, 'lease tick failed; retrying next tick'))
        .finally(() => {
          ticking = undefined;
          if (!stopped) schedule();
        });
    }, tickMs);
    timer.unref();
  }

  return {
    ensure,
    /** Takes over orphaned stores once (start-up), then keeps ticking. */
    async start(): Promise<void> {
      await tick();
      schedule();
    },
    /** Stops ticking; `release()` afterwards hands every store over at once. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await ticking;
    },
    async release(): Promise<void> {
      const ids = shards.ids();
      await deps.repo.release(ids);
      ids.forEach((id) => shards.lose(id));
      deps.onChange?.(0);
    },
    held: () => shards.size(),
    /** The held stores (epochs, lease validity by this process's clock). */
    shards,
    /** True once `stop()` was called: no store will be taken any more. */
    stopping: () => stopped,
    /** Runs a tick now (a peer just handed its stores over), unless one is running. */
    kick() {
      if (stopped || ticking) return;
      clearTimeout(timer);
      ticking = tick()
        .catch((err: unknown) => deps.log.error({ err }, 'lease tick failed; retrying next tick'))
        .finally(() => {
          ticking = undefined;
          if (!stopped) schedule();
        });
    },
  };
}

/** The lease manager's interface. */
export type LeaseManager = ReturnType<typeof createLeaseManager>;
