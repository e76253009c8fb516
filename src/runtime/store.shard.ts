/**
 * Store shards: one object per store this process holds, owning everything about holding it: the lease's epoch
 * (every write of its blogs names it), how long the lease surely lasts by this process's clock (checked before every
 * provider call), its working slots, its live actors, its write queue and its command queue. A lost store takes all
 * of it along: its actors stop, its slots are freed, its queued writes and commands are refused (retryably: they
 * go to its new owner).
 * The registry routes: a command of a store held here is queued on its shard, else forwarded to the store's owner;
 * the lease manager (`leases.ts`) only takes stores that nobody live holds.
 */
import { InkwellError, LeaseExpiredError } from '../errors';
import type { LiveBlog } from './live.blog';
import { ownershipTimings } from './ownership.timing';
import { createWriteQueue, type WriteQueue } from './write.queue';

/** Where a store's commands must go. */
export type Route = { mine: true } | { mine: false; owner: string };

/** One held store. */
export interface StoreShard {
  readonly instanceId: string;
  /** The lease's epoch when this process took the store: its writes are refused once the row has another. */
  readonly epoch: number;
  /** By this clock the lease surely holds until then: its last claim or renewal's start + TTL - `leaseMarginMs`. */
  validUntil: number;
  idleSince: number | undefined; // since when the store has had nothing to do here (undefined: busy)
  /** The store's live blog actors, by blogId. */
  readonly actors: Map<string, LiveBlog>;
  /** Loads of the store's blogs in progress (one restore per blog). */
  readonly loading: Map<string, Promise<LiveBlog | undefined>>;
  /** Blogs holding a working slot, and those waiting for one (first come, first served). */
  readonly slots: { holders: Set<string>; waiters: Array<{ blogId: string; resolve: () => void }> };
  /** Its blogs' transitions waiting for their commit, stamped with `epoch` (drained by the persister). */
  readonly writes: WriteQueue;
  /** Commands queued, the one in progress first: applied one at a time, in arrival order. */
  readonly commands: Array<{ start: () => void; refuse: (e: unknown) => void }>;
  running: boolean; // a command is being applied
  lost: boolean;
}

/** Whether a store has work here (actors or commands): it is not given back as idle. */
export const busy = (shard: StoreShard): boolean => shard.actors.size > 0 || shard.running || shard.commands.length > 0;

/**
 * How long before its lease runs out (by its own clock) a process stops starting provider calls for the store: a
 * request started just before might still reach the provider after a new owner started its own. A quarter of the
 * TTL, at most 2 s (the limiter's `ARRIVAL_SLACK_MS`: a request that took longer than that to arrive timed out).
 */
export const leaseMarginMs = (ttlMs: number): number => Math.min(2_000, Math.floor(ttlMs / 4));

const elsewhere = (instanceId: string, why: string) =>
  new InkwellError('OWNER_ELSEWHERE', `store ${instanceId} is ${why}; try again`, true);
const unreachable = (e: unknown) =>
  e instanceof InkwellError && (e.code === 'OWNER_UNREACHABLE' || e.code === 'OWNER_ELSEWHERE');
const abortError = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason : new Error('admission aborted');

/** What the registry is made with. */
export interface ShardOptions {
  ttlMs: number;
  /** At most this many blogs of one store hold a working slot (default: no limit). */
  maxPerStore?: number;
  /** No leases (a supervisor on its own, tests): a shard is made for any store as soon as it has work. */
  unleased?: boolean;
  /** How long, and how often, a command tries to reach or replace its store's owner (default: `routerWaitMs`). */
  route?: { waitMs: number; retryMs: number };
  now?: () => number;
}

/** Creates the registry of the shards this process holds. */
export function createShards(opts: ShardOptions) {
  const now = opts.now ?? Date.now;
  const maxPerStore = opts.maxPerStore ?? Infinity;
  const shards = new Map<string, StoreShard>();
  const slotOf = new Map<string, StoreShard>();
  const lostListeners: Array<(instanceId: string) => void> = [];
  const lifetime = opts.ttlMs - leaseMarginMs(opts.ttlMs);
  const { waitMs, retryMs } = opts.route ?? { waitMs: ownershipTimings(opts.ttlMs).routerWaitMs, retryMs: 250 };
  let claims: { claim: (instanceId: string) => Promise<Route>; stopping: () => boolean } | undefined;

  function make(instanceId: string, epoch: number, validUntil: number): StoreShard {
    const slots = { holders: new Set<string>(), waiters: [] };
    const shard = { instanceId, epoch, validUntil, idleSince: undefined, actors: new Map(), loading: new Map() };
    const writes = createWriteQueue(instanceId, opts.unleased ? undefined : epoch);
    shards.set(instanceId, { ...shard, slots, writes, commands: [], running: false, lost: false });
    return shards.get(instanceId)!;
  }

  /** The shard a blog's actor, slot or command goes to: the held one (any, unleased); else it is refused. */
  function place(instanceId: string): StoreShard {
    const shard = shards.get(instanceId) ?? (opts.unleased ? make(instanceId, 0, Infinity) : undefined);
    if (!shard) throw elsewhere(instanceId, 'not held here');
    return shard;
  }

  function next(shard: StoreShard) {
    if (shard.running) return;
    const turn = shard.commands.shift();
    if (!turn) return;
    shard.running = true;
    turn.start();
  }

  /** Queues `fn` on the store's shard: commands of one store are applied one at a time, in arrival order. */
  function run<T>(shard: StoreShard, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        shard.running = false;
        next(shard);
      };
      const start = () => void (async () => fn())().then(resolve, reject).finally(done);
      shard.commands.push({ start, refuse: reject });
      next(shard);
    });
  }

  function holdOn(shard: StoreShard, blogId: string) {
    shard.slots.holders.add(blogId);
    slotOf.set(blogId, shard);
  }

  function grantNext(shard: StoreShard) {
    const { holders, waiters } = shard.slots;
    while (!shard.lost && waiters.length > 0 && holders.size < maxPerStore) {
      const waiter = waiters.shift()!;
      holdOn(shard, waiter.blogId);
      waiter.resolve();
    }
  }

  /** Working slots: at most `maxPerStore` blogs of one store work at once (re-entrant per blog). */
  const slots = {
    /** Resolves once `blogId` holds a slot of its store; rejects when `signal` aborts while waiting. */
    acquire(instanceId: string, blogId: string, signal?: AbortSignal): Promise<void> {
      const shard = opts.unleased ? place(instanceId) : shards.get(instanceId);
      if (!shard) return Promise.reject(new LeaseExpiredError(instanceId));
      const { holders, waiters } = shard.slots;
      if (holders.has(blogId)) return Promise.resolve();
      if (holders.size < maxPerStore && waiters.length === 0) {
        holdOn(shard, blogId);
        return Promise.resolve();
      }
      if (signal?.aborted) return Promise.reject(abortError(signal));
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          const i = waiters.findIndex((w) => w.blogId === blogId);
          if (i >= 0) waiters.splice(i, 1);
          grantNext(shard);
          reject(abortError(signal!));
        };
        waiters.push({
          blogId,
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    /** Records a slot held before a restart (a rehydrated working blog), even above the cap. */
    hold: (instanceId: string, blogId: string) => holdOn(place(instanceId), blogId),
    /** Gives the blog's slot back (no-op when it holds none) and admits the next waiter of its store. */
    release(blogId: string) {
      const shard = slotOf.get(blogId);
      if (shard && slotOf.delete(blogId) && shard.slots.holders.delete(blogId)) grantNext(shard);
    },
    /** Blogs of `instanceId` holding a slot now, and waiting for one. */
    active: (instanceId: string) => shards.get(instanceId)?.slots.holders.size ?? 0,
    waiting: (instanceId: string) => shards.get(instanceId)?.slots.waiters.length ?? 0,
  };

  return {
    /** The shard of a held store. */
    get: (instanceId: string): StoreShard | undefined => shards.get(instanceId),
    has: (instanceId: string) => shards.has(instanceId),
    ids: () => [...shards.keys()],
    all: () => [...shards.values()],
    size: () => shards.size,
    place,
    slots,
    /** Records a store just claimed at `epoch`, by a claim that started at `startedAt` (this process's clock). */
    take(instanceId: string, epoch: number, startedAt: number): StoreShard {
      const existing = shards.get(instanceId);
      if (existing && existing.epoch === epoch) {
        existing.validUntil = Math.max(existing.validUntil, startedAt + lifetime);
        return existing;
      }
      if (existing) lose(instanceId);
      return make(instanceId, epoch, startedAt + lifetime);
    },
    /** The lease was renewed by a statement that started at `startedAt`. */
    renewed(instanceId: string, startedAt: number) {
      const shard = shards.get(instanceId);
      if (shard) shard.validUntil = Math.max(shard.validUntil, startedAt + lifetime);
    },
    lose,
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
    /** How a store nobody here holds is taken (the lease manager's claims). */
    claimWith(claimer: { claim: (instanceId: string) => Promise<Route>; stopping: () => boolean }) {
      claims = claimer;
    },
    route,
  };

  /** The store is no longer held (taken over, or given back): its actors stop, its queued commands are refused. */
  function lose(instanceId: string) {
    const shard = shards.get(instanceId);
    if (!shard) return;
    shard.lost = true;
    for (const listener of lostListeners) listener(instanceId); // while its actors are still found on it
    shards.delete(instanceId);
    for (const blogId of shard.slots.holders) if (slotOf.get(blogId) === shard) slotOf.delete(blogId);
    shard.slots.holders.clear();
    for (const turn of shard.commands.splice(0)) turn.refuse(elsewhere(instanceId, 'no longer held here'));
  }

  /**
   * Runs a command of `instanceId` where its store is held: queued on its shard here (taking the store if nobody
   * live holds it; `warm`, its blog's load, starts at once, beside the commands ahead of it), else `forward`ed to its
   * owner. An owner that does not answer is waited for (its lease runs out within the TTL, and then this process
   * takes the store), retrying every `retryMs` for up to `waitMs`; a command forwarded here is answered at once.
   */
  async function route<T>(
    instanceId: string,
    command: { apply: () => Promise<T>; warm?: () => Promise<unknown> },
    forward: ((owner: string) => Promise<T>) | undefined,
    forwarded = false,
  ): Promise<T> {
    const deadline = forwarded ? 0 : Date.now() + waitMs;
    for (;;) {
      try {
        const found = shards.has(instanceId) || opts.unleased || !claims ? undefined : await claims.claim(instanceId);
        if (found && !found.mine) {
          if (forwarded || !forward) throw elsewhere(instanceId, `held by ${found.owner}`);
          return await forward(found.owner);
        }
        const shard = place(instanceId);
        const warmed = command.warm?.().catch(() => undefined); // its failure, if any, is the command's in its turn
        return await run(shard, async () => {
          await warmed;
          return command.apply();
        });
      } catch (e) {
        if (!unreachable(e) || claims?.stopping() || Date.now() + retryMs > deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
}

/** The shard registry's interface. */
export type Shards = ReturnType<typeof createShards>;
/** Working slots of the stores (the registry's `slots`). */
export type StoreSlots = Shards['slots'];

/** Slots on their own, for stores held without leases (a supervisor or stage actors on their own). */
export const createStoreSlots = (maxPerStore: number): StoreSlots =>
  createShards({ ttlMs: Infinity, maxPerStore, unleased: true }).slots;

/**
 * Puts the limiters of the real providers behind the shards: no call starts for a store whose lease has run out by
 * this process's clock, and a lost store's calls still queued are aborted (never made).
 */
export function guardLimiters(
  shards: Shards,
  limiters: ReadonlyArray<{ guard(allowed: (id: string) => boolean): void; abortStore(id: string): number }>,
): void {
  for (const limiter of limiters) limiter.guard(shards.leaseValid);
  shards.onLost((instanceId) => limiters.forEach((l) => l.abortStore(instanceId)));
}
