/**
 * Per-store admission: at most `maxPerStore` blogs of one store hold a working slot. A blog keeps its slot
 * across consecutive working stages (acquire is re-entrant) and gives it back when it stops working.
 * Waiters of one store are served first come, first served; stores never wait for each other.
 */
interface Waiter {
  blogId: string;
  resolve: () => void;
}

const abortError = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason : new Error('admission aborted');

/** Creates the slot registry. */
export function createStoreSlots(maxPerStore: number) {
  const holders = new Map<string, Set<string>>();
  const storeOf = new Map<string, string>();
  const waiters = new Map<string, Waiter[]>();

  const held = (instanceId: string) => {
    let set = holders.get(instanceId);
    if (!set) holders.set(instanceId, (set = new Set()));
    return set;
  };

  function grantNext(instanceId: string) {
    const queue = waiters.get(instanceId);
    while (queue && queue.length > 0 && held(instanceId).size < maxPerStore) {
      const next = queue.shift()!;
      hold(instanceId, next.blogId);
      next.resolve();
    }
    if (queue && queue.length === 0) waiters.delete(instanceId);
  }

  function hold(instanceId: string, blogId: string) {
    held(instanceId).add(blogId);
    storeOf.set(blogId, instanceId);
  }

  function removeWaiter(instanceId: string, blogId: string) {
    const queue = waiters.get(instanceId);
    const i = queue?.findIndex((w) => w.blogId === blogId) ?? -1;
    if (queue && i >= 0) queue.splice(i, 1);
  }

  return {
    /** Resolves once `blogId` holds a slot of its store; rejects when `signal` aborts while waiting. */
    acquire(instanceId: string, blogId: string, signal?: AbortSignal): Promise<void> {
      if (held(instanceId).has(blogId)) return Promise.resolve();
      if (held(instanceId).size < maxPerStore && !waiters.has(instanceId)) {
        hold(instanceId, blogId);
        return Promise.resolve();
      }
      if (signal?.aborted) return Promise.reject(abortError(signal));
      return new Promise((resolve, reject) => {
        const queue = waiters.get(instanceId) ?? [];
        waiters.set(instanceId, queue);
        const onAbort = () => {
          removeWaiter(instanceId, blogId);
          grantNext(instanceId);
          reject(abortError(signal!));
        };
        queue.push({
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
    hold,
    /** Gives the blog's slot back (no-op when it holds none) and admits the next waiter of its store. */
    release(blogId: string) {
      const instanceId = storeOf.get(blogId);
      if (instanceId === undefined) return;
      storeOf.delete(blogId);
      held(instanceId).delete(blogId);
      grantNext(instanceId);
    },
    /** Blogs of `instanceId` holding a slot now. */
    active: (instanceId: string) => holders.get(instanceId)?.size ?? 0,
    /** Blogs of `instanceId` waiting for a slot. */
    waiting: (instanceId: string) => waiters.get(instanceId)?.length ?? 0,
  };
}

/** The slot registry's interface. */
export type StoreSlots = ReturnType<typeof createStoreSlots>;
