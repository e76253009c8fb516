/**
 * Provider references in the database: the `ProviderRefs` port over Drizzle.
 *
 * Every stage of every working blog reads and writes its references (the publish stage several times), so with many
 * blogs in flight one statement per call made them queue for the pool's connections, and each write was a commit of
 * its own. Calls made in the same turn of the event loop now share one statement (DataLoader, as the supervisor's
 * reads of passivated blogs do): the reads one select, the writes one multi-row upsert, one commit. A write still
 * resolves only once it is durable, and a batch that fails rejects each of its callers.
 */
import DataLoader from 'dataloader';
import { sql } from 'drizzle-orm';
import { ConflictError } from '../errors';
import type { ProviderRefs, RefOwner } from './refs.port';
import { rowsOf, type Db } from './database';
import { epochNamed, fenceOf, heldLeases, inHeldSql, retryDeadlocks, type Fence } from './blog.repo';

interface RefKey {
  blogId: string;
  key: string;
}

type RefWrite = RefKey & { value: string; instanceId: string; signal?: AbortSignal | undefined };

const BATCH = { cache: false, maxBatchSize: 500, batchScheduleFn: (run: () => void) => setImmediate(run) };
const idOf = (r: RefKey) => `${r.blogId}\u0000${r.key}`;

/**
 * Creates the repository over `db`. With a fence (or just its owner's name), a write lands only while this process
 * holds the lease of the blog's store at the epoch it holds it at now, checked under the lease row's lock as blog
 * commits are (`heldLeases`, `blog.repo.ts`), and only if the stage call that makes it is still running (its signal
 * not aborted: an actor stopped because its store was lost, even one this process took back since, writes nothing);
 * a refused write rejects with ConflictError.
 */
export function createRefsRepo(db: Db, fencing?: string | Fence): ProviderRefs {
  const fence = fenceOf(fencing);
  const reads = new DataLoader<RefKey, string | undefined>(async (wanted) => {
    const rows = rowsOf<{ blog_id: string; key: string; value: string }>(
      await db.execute(sql`
        select r.blog_id, r.key, r.value from provider_refs r
        join json_to_recordset(${JSON.stringify(wanted)}::json) as w("blogId" text, key text)
          on r.blog_id = w."blogId" and r.key = w.key`),
    );
    const found = new Map(rows.map((r) => [`${r.blog_id}\u0000${r.key}`, r.value]));
    // An empty value is a cleared reference.
    return wanted.map((w) => found.get(idOf(w)) || undefined);
  }, BATCH);

  const writes = new DataLoader<RefWrite, void>(async (list) => {
    // One row per (blog, key): a later write of the same turn wins, as it would one after the other.
    const latest = new Map(list.map((w) => [idOf(w), w]));
    if (!fence) {
      const values = [...latest.values()].map(({ blogId, key, value }) => ({ blogId, key, value }));
      await db.execute(sql`
        insert into provider_refs (blog_id, key, value)
        select "blogId", key, value from json_to_recordset(${JSON.stringify(values)}::json)
          as w("blogId" text, key text, value text)
        on conflict (blog_id, key) do update set value = excluded.value, updated_at = now()`);
      return list.map(() => undefined);
    }
    // A call that ended (its actor stopped) writes nothing; the others name their store's epoch of now.
    const live = [...latest.values()].filter((w) => !w.signal?.aborted);
    const rows = live.map((w) => ({
      blog_id: w.blogId,
      key: w.key,
      value: w.value,
      instance_id: w.instanceId,
      epoch: epochNamed(fence, w.instanceId),
    }));
    const written = rows.length
      ? rowsOf<{ blog_id: string; key: string }>(
          await retryDeadlocks(async () =>
            db.execute(sql`
          with f as materialized (${heldLeases(fence, rows)}),
          w as (select * from json_to_recordset(${JSON.stringify(rows)}::json)
            as w(blog_id text, key text, value text, instance_id text, epoch int))
          insert into provider_refs (blog_id, key, value)
          select w.blog_id, w.key, w.value from w join blogs b on b.blog_id = w.blog_id and b.instance_id = w.instance_id
          where true ${inHeldSql(sql`w.instance_id`, sql`w.epoch`)}
          on conflict (blog_id, key) do update set value = excluded.value, updated_at = now()
          returning blog_id, key`),
          ),
        )
      : [];
    const ok = new Set(written.map((r) => idOf({ blogId: r.blog_id, key: r.key })));
    return list.map((w) =>
      ok.has(idOf(w)) ? undefined : new ConflictError(`blog ${w.blogId}: its store is not held here; ref not written`),
    );
  }, BATCH);

  return {
    get: (blogId, key) => reads.load({ blogId, key }),
    put: (owner: RefOwner, key, value) =>
      writes.load({ blogId: owner.blogId, instanceId: owner.instanceId, signal: owner.signal, key, value }),
  };
}
