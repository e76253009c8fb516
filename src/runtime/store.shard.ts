/**
 * Store shards: one object per store this process holds, owning what holding it means: the lease's fencing epoch
 * (which every write of the store's blogs names, `src/db/fence.ts`), how long the lease surely lasts by this
 * process's own clock (checked before every side-effecting provider call), and the commands in progress that keep
 * the store from being given back as idle. The lease manager takes and loses shards; everything else asks them.
 */

/** One held store. */
export interface StoreShard {
  readonly instanceId: string;
  /** The lease's epoch when this process took the store: its writes are refused once the row has another. */
  readonly epoch: number;
  /**
   * By this process's clock, the lease surely holds until then: the start of its last claim or renewal (the
   * database stamped the expiry later than that) plus the TTL, minus `leaseMarginMs`.
   */
  validUntil: number;
  /** Commands in progress: the store is not given back as idle meanwhile. */
  pins: number;
  /** Since when the store has had nothing to do here (undefined: busy). */
  idleSince: number | undefined;
}

/**
 * How long before its lease runs out (by its own clock) a process stops starting provider calls for the store: a
 * request started just before might still reach the provider after a new owner started its own. A quarter of the
 * TTL, at most 2 s (the limiter's `ARRIVAL_SLACK_MS`: a request that took longer than that to arrive timed out).
 */
export const leaseMarginMs = (ttlMs: number): number => Math.min(2_000, Math.floor(ttlMs / 4));

/** Creates the registry of the shards this process holds. */
export function createShards(opts: { ttlMs: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const shards = new Map<string, StoreShard>();
  const lostListeners: Array<(instanceId: string) => void> = [];
  const lifetime = opts.ttlMs - leaseMarginMs(opts.ttlMs);

  return {
    /** The shard of a held store. */
    get: (instanceId: string): StoreShard | undefined => shards.get(instanceId),
    has: (instanceId: string) => shards.has(instanceId),
    ids: () => [...shards.keys()],
    all: () => [...shards.values()],
    size: () => shards.size,
    /** Records a store just claimed at `epoch`, by a claim that started at `startedAt` (this process's clock). */
    take(instanceId: string, epoch: number, startedAt: number): StoreShard {
      const existing = shards.get(instanceId);
      if (existing && existing.epoch === epoch) {
        existing.validUntil = Math.max(existing.validUntil, startedAt + lifetime);
        return existing;
      }
      const shard: StoreShard = { instanceId, epoch, validUntil: startedAt + lifetime, pins: 0, idleSince: undefined };
      shards.set(instanceId, shard);
      return shard;
    },
    /** The lease was renewed by a statement that started at `startedAt`. */
    renewed(instanceId: string, startedAt: number) {
      const shard = shards.get(instanceId);
      if (shard) shard.validUntil = Math.max(shard.validUntil, startedAt + lifetime);
    },
    /** The store is no longer held (taken over, or given back): forgets it and tells the listeners. */
    lose(instanceId: string) {
      if (!shards.delete(instanceId)) return;
      for (const listener of lostListeners) listener(instanceId);
    },
    /** Called with every store lost or given back (its actors stop, its queued provider calls are aborted). */
    onLost(listener: (instanceId: string) => void) {
      lostListeners.push(listener);
    },
    /** The epoch writes of `instanceId` must name; undefined when it is not held here (they are refused). */
    epochOf: (instanceId: string): number | undefined => shards.get(instanceId)?.epoch,
    /** Whether the store is held and its lease has not run out by this process's clock (minus the margin). */
    leaseValid: (instanceId: string): boolean => {
      const shard = shards.get(instanceId);
      return shard !== undefined && now() < shard.validUntil;
    },
  };
}

/** The shard registry's interface. */
export type Shards = ReturnType<typeof createShards>;

/** What `guardLimiters` needs of a provider limiter. */
interface GuardedLimiter {
  guard(allowed: (instanceId: string) => boolean): void;
  abortStore(instanceId: string): number;
}

/**
 * Puts the limiters of the real providers behind the shards: no call starts for a store whose lease has run out by
 * this process's clock, and a lost store's calls still queued are aborted (never made).
 */
export function guardLimiters(shards: Shards, limiters: readonly GuardedLimiter[]): void {
  for (const limiter of limiters) limiter.guard(shards.leaseValid);
  shards.onLost((instanceId) => limiters.forEach((l) => l.abortStore(instanceId)));
}
