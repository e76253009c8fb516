/**
 * Store leases: which process advances a store's blogs. Times come from the database clock, so processes with
 * skewed clocks still agree on who holds what.
 */
import { sql } from 'drizzle-orm';
import { LIVE_STATUSES } from './blog.port';
import { rowsOf, type Db } from './database';

/**
 * The outcome of an attempt to hold a store; `epoch` is the lease's fencing token, which grows at every change of
 * owner: the holder's writes name it (the fence of `blog.repo.ts`).
 */
export type LeaseClaim = { held: true; takeover: boolean; epoch: number } | { held: false; owner: string };

const ACTIVE_SQL = sql`(${sql.join(
  LIVE_STATUSES.map((s) => sql`${s}`),
  sql`, `,
)})`;

/** A list of store ids as one parameter: a set of `instance_id` rows to select from. */
const storeIds = (ids: string[]) =>
  sql`(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) as instance_id)`;

/** The store leases as the lease manager uses them (implemented over PostgreSQL by `createLeaseRepo`). */
export interface LeaseRepo {
  /** Holds `instanceId` unless a live process does. */
  claim(instanceId: string): Promise<LeaseClaim>;
  /** Holds each of `instanceIds` that no live process does, in one statement. */
  claimMany(instanceIds: string[]): Promise<Map<string, LeaseClaim>>;
  /** Renews the leases still held; the stores among `instanceIds` that are. */
  renew(instanceIds: string[]): Promise<Set<string>>;
  /** Gives stores back. */
  release(instanceIds: string[]): Promise<void>;
  /** Stores with working blogs that no live process holds: to be taken over. */
  orphans(limit?: number): Promise<string[]>;
  /** Waiting blogs whose timer fires within `horizonMs`, of stores this process holds or nobody does. */
  dueTimers(horizonMs: number, limit?: number): Promise<Array<{ blogId: string; instanceId: string }>>;
}

/** Creates the repository over `db` for the process `nodeId`. */
export function createLeaseRepo(db: Db, nodeId: string, ttlMs: number): LeaseRepo {
  const ttl = sql`make_interval(secs => ${ttlMs / 1000})`;
  return {
    /** Holds `instanceId` unless a live process does; `takeover` when it was someone else's (or nobody's) before. */
    async claim(instanceId: string): Promise<LeaseClaim> {
      const [row] = rowsOf<{ owner: string | null; mine: boolean; was: string | null; epoch: number }>(
        await db.execute(sql`
          with prev as (select owner from store_leases where instance_id = ${instanceId})
          insert into store_leases as l (instance_id, owner, expires_at, epoch)
          values (${instanceId}, ${nodeId}, now() + ${ttl}, 1)
          on conflict (instance_id) do update set owner = ${nodeId}, expires_at = now() + ${ttl},
            epoch = l.epoch + (case when l.owner is distinct from ${nodeId} then 1 else 0 end)
            where l.owner = ${nodeId} or l.owner is null or l.expires_at < now()
          returning true as mine, (select owner from prev) as was, l.owner, l.epoch`),
      );
      if (row?.mine) return { held: true, takeover: row.was !== nodeId, epoch: row.epoch };
      const [current] = rowsOf<{ owner: string }>(
        await db.execute(sql`select owner from store_leases where instance_id = ${instanceId}`),
      );
      return current?.owner ? { held: false, owner: current.owner } : this.claim(instanceId);
    },

    /**
     * Claims many stores in ONE statement (a burst of commands for stores nobody holds costs one round trip).
     * Returns a claim per id; an id whose row appeared meanwhile (another process inserted it in the same
     * instant) is claimed again on its own, so every answer is exact. Rows are taken in `instance_id` order, the
     * order fenced writes lock them in, so a claim and a write never wait for each other in a cycle.
     */
    async claimMany(instanceIds: string[]): Promise<Map<string, LeaseClaim>> {
      const ids = [...new Set(instanceIds)].sort();
      const out = new Map<string, LeaseClaim>();
      if (ids.length === 0) return out;
      const rows = rowsOf<{
        instance_id: string;
        mine: boolean;
        was: string | null;
        existed: boolean;
        epoch: number | null;
      }>(
        await db.execute(sql`
          with ids as ${storeIds(ids)},
          prev as (select l.instance_id, l.owner from store_leases l join ids using (instance_id)),
          up as (
            insert into store_leases as l (instance_id, owner, expires_at, epoch)
            select instance_id, ${nodeId}, now() + ${ttl}, 1 from ids order by instance_id
            on conflict (instance_id) do update set owner = ${nodeId}, expires_at = now() + ${ttl},
              epoch = l.epoch + (case when l.owner is distinct from ${nodeId} then 1 else 0 end)
              where l.owner = ${nodeId} or l.owner is null or l.expires_at < now()
            returning l.instance_id, l.epoch)
          select ids.instance_id, up.instance_id is not null as mine, prev.owner as was,
            prev.instance_id is not null as existed, up.epoch
          from ids left join up using (instance_id) left join prev using (instance_id)`),
      );
      for (const row of rows) {
        if (row.mine) out.set(row.instance_id, { held: true, takeover: row.was !== nodeId, epoch: row.epoch ?? 0 });
        else if (row.existed && row.was) out.set(row.instance_id, { held: false, owner: row.was });
      }
      for (const id of ids) if (!out.has(id)) out.set(id, await this.claim(id));
      return out;
    },

    /**
     * Extends the leases of `instanceIds` that this process holds; returns those still held (the others were taken
     * over). A lease that expired while the database was unreachable is still ours if nobody took it meanwhile. A
     * lease of ours that is not listed (claimed, but its blogs could not be loaded) is left to expire, so another
     * process takes the store over and loads them.
     */
    async renew(instanceIds: string[]): Promise<Set<string>> {
      if (instanceIds.length === 0) return new Set();
      const rows = rowsOf<{ instance_id: string }>(
        await db.execute(sql`
          update store_leases set expires_at = now() + ${ttl}
          where owner = ${nodeId}
            and instance_id in ${storeIds(instanceIds)}
          returning instance_id`),
      );
      return new Set(rows.map((r) => r.instance_id));
    },

    /** Gives stores back at once (graceful stop, or an idle store) so any process may take them. */
    async release(instanceIds: string[]): Promise<void> {
      if (instanceIds.length === 0) return;
      await db.execute(sql`
        update store_leases set owner = null, expires_at = now()
        where owner = ${nodeId} and instance_id in ${storeIds(instanceIds)}`);
    },

    /** Stores with working blogs that no live process holds: to be taken over. */
    async orphans(limit = 100): Promise<string[]> {
      const rows = rowsOf<{ instance_id: string }>(
        await db.execute(sql`
          select distinct b.instance_id from blogs b
          left join store_leases l on l.instance_id = b.instance_id
          where b.status in ${ACTIVE_SQL} and b.quarantined_at is null
            and (l.owner is null or l.expires_at < now())
          limit ${limit}`),
      );
      return rows.map((r) => r.instance_id);
    },

    /** Waiting blogs whose timer fires within `horizonMs`, of stores this process holds or nobody does. */
    async dueTimers(horizonMs: number, limit = 1000): Promise<Array<{ blogId: string; instanceId: string }>> {
      const rows = rowsOf<{ blog_id: string; instance_id: string }>(
        await db.execute(sql`
          select b.blog_id, b.instance_id from blogs b
          left join store_leases l on l.instance_id = b.instance_id
          where b.status = 'AWAITING_SELECTION' and b.quarantined_at is null
            and b.wake_at < now() + make_interval(secs => ${horizonMs / 1000})
            and (l.owner is null or l.owner = ${nodeId} or l.expires_at < now())
          order by b.wake_at limit ${limit}`),
      );
      return rows.map((r) => ({ blogId: r.blog_id, instanceId: r.instance_id }));
    },
  };
}
