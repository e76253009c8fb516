/**
 * The lease manager: which stores this process advances. Every `ttl/3` it renews its leases (dropping the
 * actors of any store it lost), takes over stores whose owner went silent (rehydrating their working blogs),
 * loads waiting blogs whose selection timeout is near, and gives back stores it no longer has work for.
 */
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
  const tickMs = Math.max(200, Math.floor(deps.ttlMs / 3));
  const horizonMs = Math.max(2 * tickMs, 10_000);
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let stopped = false;

  const claiming = new Map<string, Promise<Route>>();

  /** Holds `instanceId` if nobody live does (rehydrating it on a takeover); else says who does. */
  function ensure(instanceId: string): Promise<Route> {
    if (owned.has(instanceId)) return Promise.resolve({ mine: true });
    const pending = claiming.get(instanceId);
    if (pending) return pending;
    const promise = claim(instanceId).finally(() => claiming.delete(instanceId));
    claiming.set(instanceId, promise);
    return promise;
  }

  async function claim(instanceId: string): Promise<Route> {
    if (stopped) return { mine: false, owner: 'nobody (stopping)' };
    const claim = await deps.repo.claim(instanceId);
    if (!claim.held) return { mine: false, owner: claim.owner };
    owned.add(instanceId);
    deps.onChange?.(owned.size);
    const restored = await deps.supervisor.rehydrateStore(instanceId);
    if (claim.takeover && restored > 0) deps.log.info({ instanceId, restored }, 'took over store');
    return { mine: true };
  }

  async function renew() {
    const held = await deps.repo.renew();
    for (const instanceId of [...owned]) {
      if (held.has(instanceId)) continue;
      owned.delete(instanceId);
      const dropped = deps.supervisor.dropStore(instanceId);
      deps.log.warn({ instanceId, dropped }, 'store lease lost; its blogs continue in another process');
    }
  }

  async function releaseIdle() {
    const busy = deps.supervisor.liveStores();
    const idle = [...owned].filter((s) => !busy.has(s) && !pinned.has(s));
    const now = Date.now();
    const release = idle.filter((s) => now - (idleSince.get(s) ?? now) >= tickMs);
    for (const s of idle) if (!idleSince.has(s)) idleSince.set(s, now);
    for (const s of owned) if (!idle.includes(s)) idleSince.delete(s);
    if (release.length === 0) return;
    release.forEach((s) => (owned.delete(s), idleSince.delete(s)));
    await deps.repo.release(release);
  }

  async function tick() {
    await renew();
    for (const instanceId of await deps.repo.orphans()) await ensure(instanceId);
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
