/**
 * The lease manager: which stores this process advances. Every `ttl/3` it renews its leases (dropping the
 * actors of any store it lost), takes over stores whose owner went silent (rehydrating their working blogs),
 * loads waiting blogs whose selection timeout is near, and gives back stores it no longer has work for.
 */
import { ownershipTimings } from './ownership.timing';
import type { LeaseRepo } from '../db/lease.repo';
import type { Logger } from '../logger';
import type { Supervisor } from './supervisor';

/** Where a store's commands must go. */
export type Route = { mine: true } | { mine: false; owner: string };

/** Creates the manager; nothing runs until `start()`. */
export function createLeaseManager(deps: {
  repo: LeaseRepo;
  supervisor: Supervisor;
  log: Logger;
  ttlMs: number;
  onChange?: (held: number) => void;
}) {
  const owned = new Set<string>();
  const pinned = new Map<string, number>();
  const idleSince = new Map<string, number>();
  const tickMs = ownershipTimings(deps.ttlMs).renewEveryMs;
  const horizonMs = Math.max(2 * tickMs, 10_000);
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let stopped = false;

  const claiming = new Map<string, Promise<Route>>();
  /** Claims waiting for the next batch: a burst of commands for new stores costs one statement, not one each. */
  let queued: Array<{ instanceId: string; resolve: (route: Route) => void; reject: (e: unknown) => void }> = [];
  let flushing = false;

  /** Holds `instanceId` if nobody live does (rehydrating it on a takeover); else says who does. */
  function ensure(instanceId: string): Promise<Route> {
    if (owned.has(instanceId)) return Promise.resolve({ mine: true });
    const pending = claiming.get(instanceId);
    if (pending) return pending;
    const promise = new Promise<Route>((resolve, reject) => {
      queued.push({ instanceId, resolve, reject });
      if (queued.length === 1) setImmediate(() => void flush());
    }).finally(() => claiming.delete(instanceId));
    claiming.set(instanceId, promise);
    return promise;
  }

  async function flush(): Promise<void> {
    if (flushing || queued.length === 0) return;
    flushing = true;
    const batch = queued;
    queued = [];
    let held: string[] = [];
    try {
      if (stopped) {
        batch.forEach((c) => c.resolve({ mine: false, owner: 'nobody (stopping)' }));
        return;
      }
      const claims = await deps.repo.claimMany(batch.map((c) => c.instanceId));
      held = [...claims].filter(([, c]) => c.held).map(([id]) => id);
      held.forEach((id) => owned.add(id));
      if (held.length > 0) deps.onChange?.(owned.size);
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
      held.forEach((id) => owned.delete(id));
      batch.forEach((c) => c.reject(error));
    } finally {
      flushing = false;
      if (queued.length > 0) setImmediate(() => void flush());
    }
  }

  async function renew() {
    const held = await deps.repo.renew([...owned]);
    for (const instanceId of [...owned]) {
      if (held.has(instanceId)) continue;
      owned.delete(instanceId);
      const dropped = deps.supervisor.dropStore(instanceId);
      deps.log.warn({ instanceId, dropped }, 'store lease lost; its blogs continue in another process');
    }
  }

  async function releaseIdle() {
    const busy = deps.supervisor.liveStores();
    const idle = new Set([...owned].filter((s) => !busy.has(s) && !pinned.has(s)));
    const now = Date.now();
    const release = [...idle].filter((s) => now - (idleSince.get(s) ?? now) >= tickMs);
    for (const s of idle) if (!idleSince.has(s)) idleSince.set(s, now);
    for (const s of owned) if (!idle.has(s)) idleSince.delete(s);
    if (release.length === 0) return;
    release.forEach((s) => (owned.delete(s), idleSince.delete(s)));
    await deps.repo.release(release);
  }

  async function tick() {
    await renew();
    await Promise.all((await deps.repo.orphans()).map(ensure)); // one batch of claims
    for (const due of await deps.repo.dueTimers(horizonMs)) {
      if ((await ensure(due.instanceId)).mine) await deps.supervisor.load(due.blogId);
    }
    await releaseIdle();
    deps.onChange?.(owned.size);
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
    /** Runs `fn` while `instanceId` cannot be released as idle (a command in progress). */
    async pin<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
      pinned.set(instanceId, (pinned.get(instanceId) ?? 0) + 1);
      try {
        return await fn();
      } finally {
        const n = (pinned.get(instanceId) ?? 1) - 1;
        if (n === 0) pinned.delete(instanceId);
        else pinned.set(instanceId, n);
      }
    },
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
      await deps.repo.release([...owned]);
      owned.clear();
      deps.onChange?.(0);
    },
    held: () => owned.size,
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
