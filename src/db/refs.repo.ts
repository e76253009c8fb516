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
import type { ProviderRefs } from './refs.port';
import { rowsOf, type Db } from './database';
import { fenceOf, retryDeadlocks, type Fence } from './blog.repo';

interface RefKey {
  blogId: string;
  key: string;
}

type RefWrite = RefKey & { value: string };

const BATCH = { cache: false, maxBatchSize: 500, batchScheduleFn: (run: () => void) => setImmediate(run) };
const idOf = (r: RefKey) => `${r.blogId}\u0000${r.key}`;

/**
 * Creates the repository over `db`. With a fence (or just its owner's name), a write lands only while this process
 * holds the lease of the blog's store, checked under the lease row's lock as blog commits are (`heldLeases`, `blog.repo.ts`); a
 * refused write rejects with ConflictError. The epoch is not checked here (the refs port names no store): the owner,
 * under the lock, is.
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
    const values = sql`json_to_recordset(${JSON.stringify([...latest.values()])}::json)
      as w("blogId" text, key text, value text)`;
    if (!fence) {
      await db.execute(sql`
        insert into provider_refs (blog_id, key, value)
        select "blogId", key, value from ${values}
        on conflict (blog_id, key) do update set value = excluded.value, updated_at = now()`);
      return list.map(() => undefined);
    }
    const written = rowsOf<{ blog_id: string }>(
      await retryDeadlocks(async () =>
        db.execute(sql`
          with w as (select * from ${values}),
          f as materialized (
            select l.instance_id from store_leases l
            where l.owner = ${fence.owner}
              and l.instance_id in (select b.instance_id from blogs b join w on b.blog_id = w."blogId")
            order by l.instance_id
            for key share of l)
          insert into provider_refs (blog_id, key, value)
          select w."blogId", w.key, w.value from w join blogs b on b.blog_id = w."blogId"
          where b.instance_id in (select instance_id from f)
          on conflict (blog_id, key) do update set value = excluded.value, updated_at = now()
          returning blog_id`),
      ),
    );
    const ok = new Set(written.map((r) => r.blog_id));
    return list.map((w) =>
      ok.has(w.blogId) ? undefined : new ConflictError(`blog ${w.blogId}: its store is not held here; ref not written`),
    );
  }, BATCH);

  return {
    get: (blogId, key) => reads.load({ blogId, key }),
    put: (blogId, key, value) => writes.load({ blogId, key, value }),
  };
}
