/**
 * The fence on every write of a store's blogs: the write lands only if this process still holds the store's lease
 * at the epoch it took it with, and no takeover can commit between that check and the write's commit.
 *
 * Each fenced statement locks the lease rows it relies on `FOR KEY SHARE`, in `instance_id` order, checking owner
 * and epoch as it locks. `store_leases_epoch_key`, a unique index on (instance_id, epoch), makes `epoch` a key
 * column, so:
 * - a takeover (its UPDATE changes `epoch`, so it takes the row `FOR UPDATE`) waits for every fenced write that
 *   locked the row to commit or roll back, and a fenced write that comes after the takeover locked or committed the
 *   row waits for it and then, under READ COMMITTED, re-checks owner and epoch against the new row version (it no
 *   longer matches: the write changes nothing);
 * - a renewal (`expires_at` only: a `FOR NO KEY UPDATE`) and other fenced writes never wait for each other.
 * So a write either commits before the takeover does, which the new owner then reads, or it is refused.
 */
import { sql, type SQL } from 'drizzle-orm';

/** Who writes, and the epoch at which it holds each store (undefined: not held, so every write is refused). */
export interface Fence {
  owner: string;
  /** Without it only the owner is checked (still under the lock); with it, the epoch the holder took the store at. */
  epochOf?: (instanceId: string) => number | undefined;
}

/** A fence from a bare owner name (the old `fenceOwner` argument) or a fence. */
export const fenceOf = (fence: string | Fence | undefined): Fence | undefined =>
  typeof fence === 'string' ? { owner: fence } : fence;

/**
 * A `select instance_id` of the lease rows of `instanceIds` that `fence` still holds, locked `FOR KEY SHARE` in
 * `instance_id` order (a statement covering many stores takes its locks in the same order as every other one).
 * Put it in a `with ... as materialized (...)` and keep only the rows of stores it returns.
 */
export function heldLeases(fence: Fence, instanceIds: Iterable<string>): SQL {
  const ids = [...new Set(instanceIds)];
  const pairs = ids.map((id) => ({ instance_id: id, epoch: fence.epochOf ? (fence.epochOf(id) ?? -1) : null }));
  return sql`select l.instance_id from store_leases l
    join json_to_recordset(${JSON.stringify(pairs)}::json) as f(instance_id text, epoch int)
      on l.instance_id = f.instance_id
    where l.owner = ${fence.owner} and (f.epoch is null or l.epoch = f.epoch)
    order by l.instance_id
    for key share of l`;
}

/** Deadlock detected: the statement was rolled back whole, so running it again is safe. */
export const isDeadlock = (error: unknown): boolean =>
  (error as { code?: unknown } | undefined)?.code === '40P01' ||
  (error as { cause?: { code?: unknown } } | undefined)?.cause?.code === '40P01';

/** Runs `statement`, again (up to 3 times) when PostgreSQL broke a deadlock by rolling it back. */
export async function retryDeadlocks<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (attempt >= 3 || !isDeadlock(error)) throw error;
    }
  }
}
