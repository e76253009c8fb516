/**
 * The stores' spend per UTC day, as provider answers come in: kept in memory and added to `store_usage` in one
 * statement about once a second (an answer costs a Map update, not a round trip). A flush that fails keeps its
 * amounts for the next one, so a database outage loses nothing; a process killed outright loses at most the
 * last second's amounts from the per-store sums (the blogs' own `usage` is persisted with their snapshots).
 */
import { addUsage, type Usage } from '../../machines/blog.types';
import type { DayUsage, UsageRepo } from '../db/usage.repo';
import type { Logger } from '../logger';

/** The UTC day (`YYYY-MM-DD`) of a time in ms. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Creates the ledger over `repo`; `start()` begins the periodic flush. */
export function createUsageLedger(repo: UsageRepo, log: Logger, opts: { flushMs?: number; now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  let pending = new Map<string, DayUsage>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  /** Budget reads: a store's stored tokens of a day, when read; and what was recorded here since (flushed or not). */
  const stored = new Map<string, { at: number; tokens: number }>();
  const sinceRead = new Map<string, number>();

  function merge(into: Map<string, DayUsage>, row: DayUsage) {
    const key = `${row.instanceId}\u0000${row.day}`;
    const sum = addUsage(into.get(key), row);
    into.set(key, { instanceId: row.instanceId, day: row.day, ...sum });
  }

  function flush(): Promise<void> {
    flushing = flushing.then(async () => {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      try {
        await repo.add([...batch.values()]);
      } catch (err) {
        for (const row of batch.values()) merge(pending, row);
        log.warn({ err, rows: batch.size }, 'recording store usage failed; kept for the next flush');
        throw err;
      }
    });
    return flushing.catch(() => undefined);
  }

  return {
    /** Adds what `instanceId` just spent to today's (UTC) total. */
    record(instanceId: string, usage: Partial<Usage>): void {
      const row = { instanceId, day: utcDay(now()), ...addUsage(undefined, usage) };
      merge(pending, row);
      const key = `${instanceId}\u0000${row.day}`;
      if (stored.has(key)) sinceRead.set(key, (sinceRead.get(key) ?? 0) + row.inputTokens + row.outputTokens);
    },
    /** `instanceId`'s spend per day between `from` and `to` (`YYYY-MM-DD`, inclusive), amounts not yet flushed included. */
    async days(instanceId: string, from: string, to: string): Promise<DayUsage[]> {
      await flush();
      const byDay = new Map<string, DayUsage>();
      for (const row of await repo.days(instanceId, from, to)) merge(byDay, row);
      for (const row of pending.values()) {
        if (row.instanceId === instanceId && row.day >= from && row.day <= to) merge(byDay, row);
      }
      return [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day));
    },
    /** Tokens `instanceId` spent today (UTC): the stored sum, read at most every `maxAgeMs`, plus what is not flushed. */
    async tokensToday(instanceId: string, maxAgeMs = 5_000): Promise<number> {
      const day = utcDay(now());
      const key = `${instanceId}\u0000${day}`;
      let cached = stored.get(key);
      if (!cached || now() - cached.at > maxAgeMs) {
        // From here on, what is recorded counts in `sinceRead` (a flush racing the read may count it twice: more
        // careful, never less).
        stored.set(key, cached ?? { at: 0, tokens: 0 });
        sinceRead.set(key, 0);
        await flush();
        cached = { at: now(), tokens: await repo.tokensOn(instanceId, day) };
        if (stored.size > 10_000) {
          // Bounded: yesterday's and idle stores' entries go; a store read again is simply read afresh.
          for (const [k, v] of stored) {
            if (now() - v.at > maxAgeMs && k !== key) {
              stored.delete(k);
              sinceRead.delete(k);
            }
          }
        }
        stored.set(key, cached);
      }
      return cached.tokens + (sinceRead.get(key) ?? 0);
    },
    flush,
    start(): void {
      timer ??= setInterval(() => void flush(), opts.flushMs ?? 1_000);
      timer.unref();
    },
    /** Stops the timer and writes what is left (once more on failure). */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await flush();
    },
  };
}

/** The ledger's interface. */
export type UsageLedger = ReturnType<typeof createUsageLedger>;
