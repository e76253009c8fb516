/**
 * The retention job: every `everyMs`, prunes ended blogs older than `days` in batches of `batch`, with a pause
 * between batches so live work always gets the database in between. Several processes may run it at once: a batch
 * skips the rows another one is pruning.
 */
import type { Logger } from '../logger';
import type { PrunedCounts, RetentionRepo } from '../db/retention.repo';

/** Options of the retention job. */
export interface RetentionOptions {
  repo: RetentionRepo;
  log: Logger;
  days: number;
  onPruned?: (counts: PrunedCounts) => void;
  everyMs?: number;
  batch?: number;
  pauseMs?: number;
  now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Creates the job; `start()` schedules it, `runOnce()` prunes everything due now. */
export function createRetention(opts: RetentionOptions) {
  const batch = opts.batch ?? 500;
  const pauseMs = opts.pauseMs ?? 20;
  const now = opts.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PrunedCounts> | undefined;
  let stopped = false;

  async function prune(): Promise<PrunedCounts> {
    const total: PrunedCounts = { blogs: 0, events: 0, refs: 0 };
    const cutoff = new Date(now() - opts.days * DAY_MS);
    while (!stopped) {
      const counts = await opts.repo.pruneBatch(cutoff, batch);
      total.blogs += counts.blogs;
      total.events += counts.events;
      total.refs += counts.refs;
      if (counts.blogs > 0) opts.onPruned?.(counts);
      if (counts.blogs < batch) break;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    if (total.blogs > 0) opts.log.info({ ...total, days: opts.days }, 'retention pruned ended blogs');
    return total;
  }

  const runOnce = () => (running ??= prune().finally(() => (running = undefined)));

  return {
    runOnce,
    start(firstMs = 5_000) {
      const schedule = (ms: number) => {
        timer = setTimeout(() => {
          runOnce()
            .catch((err: unknown) => opts.log.warn({ err }, 'retention pass failed; trying again later'))
            .finally(() => !stopped && schedule(opts.everyMs ?? 10 * 60_000));
        }, ms);
        timer.unref();
      };
      schedule(firstMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
