/**
 * Notices of outbox rows: a commit or an insert of the blog repository (with a channel) announces each outbox row it
 * writes on that PostgreSQL channel, delivered to the channel's listener (the events thread, `event.worker.ts`) when
 * the statement commits, in commit order.
 */
import { sql, type SQL } from 'drizzle-orm';

/**
 * What a notice says: `[blog_id, instance_id, seq, payload]`, JSON. A payload too large for one notice (PostgreSQL
 * refuses more than 8,000 bytes, and would fail the whole statement) is left out (null): its event goes by the relay.
 */
export type OutboxNotice = [blogId: string, instanceId: string, seq: number, payload: Record<string, unknown> | null];

const PAYLOAD_MAX = 7_000;

/**
 * For a statement whose CTE named `rows` returns the outbox rows it wrote: `cte`, the CTE `n` announcing them on
 * `channel` (put it after that one, it starts with a comma), and `force`, a part of the main query (`union all` of
 * one row of three nulls) without which PostgreSQL would not run `n`. Both are empty without a channel.
 */
export function outboxNotice(channel: string | undefined, rows: string): { cte: SQL; force: SQL } {
  if (!channel) return { cte: sql``, force: sql`` };
  const notice =
    `json_build_array(${rows}.blog_id, ${rows}.instance_id, ${rows}.seq, ` +
    `case when octet_length(${rows}.payload::text) <= ${PAYLOAD_MAX} then ${rows}.payload end)::text`;
  return {
    cte: sql`, n as (select pg_notify(${channel}, ${sql.raw(notice)}) from ${sql.raw(rows)})`,
    force: sql`union all select null, null, null from (select count(*) from n) c`,
  };
}
