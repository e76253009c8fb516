/**
 * What stores spent per UTC day (`store_usage`): added to in batches, read per store and day range. Not fenced by the
 * store's lease, unlike the writes of its blogs: it adds what a provider charged, whoever made the call, and a lost
 * lease does not undo a charge (fencing it would only lose spend the store's daily budget must count).
 */
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './database';

/** One store's spend on one UTC day (`YYYY-MM-DD`). */
export interface DayUsage {
  instanceId: string;
  day: string;
  inputTokens: number;
  outputTokens: number;
  images: number;
}

/** The port the usage ledger (runtime/usage.ledger.ts) keeps and reads the stores' spend through. */
export interface UsageRepo {
  /** Adds every row to its (store, day) in ONE statement; rows for the same key must be merged before. */
  add(rows: DayUsage[]): Promise<void>;
  /** Tokens (input + output) `instanceId` spent on `day`. */
  tokensOn(instanceId: string, day: string): Promise<number>;
  /** `instanceId`'s days from `from` to `to` (inclusive, `YYYY-MM-DD`), oldest first; days with no spend omitted. */
  days(instanceId: string, from: string, to: string): Promise<DayUsage[]>;
}

/** Creates the repository over `db`. */
export function createUsageRepo(db: Db): UsageRepo {
  return {
    async add(rows) {
      if (rows.length === 0) return;
      await db.execute(sql`
        insert into store_usage as u (instance_id, day, input_tokens, output_tokens, images)
        select r.instance_id, r.day::date, r.input_tokens, r.output_tokens, r.images
        from json_to_recordset(${JSON.stringify(
          rows.map((r) => ({
            instance_id: r.instanceId,
            day: r.day,
            input_tokens: r.inputTokens,
            output_tokens: r.outputTokens,
            images: r.images,
          })),
        )}::json) as r(instance_id text, day text, input_tokens bigint, output_tokens bigint, images integer)
        on conflict (instance_id, day) do update set
          input_tokens = u.input_tokens + excluded.input_tokens,
          output_tokens = u.output_tokens + excluded.output_tokens,
          images = u.images + excluded.images`);
    },

    async tokensOn(instanceId, day) {
      const [row] = rowsOf<{ tokens: string | null }>(
        await db.execute(sql`
          select input_tokens + output_tokens as tokens from store_usage
          where instance_id = ${instanceId} and day = ${day}::date`),
      );
      return Number(row?.tokens ?? 0);
    },

    async days(instanceId, from, to) {
      const rows = rowsOf<{ day: string; input_tokens: string; output_tokens: string; images: number }>(
        await db.execute(sql`
          select to_char(day, 'YYYY-MM-DD') as day, input_tokens, output_tokens, images from store_usage
          where instance_id = ${instanceId} and day between ${from}::date and ${to}::date order by day`),
      );
      return rows.map((r) => ({
        instanceId,
        day: r.day,
        inputTokens: Number(r.input_tokens),
        outputTokens: Number(r.output_tokens),
        images: Number(r.images),
      }));
    },
  };
}
