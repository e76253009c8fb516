/**
 * The retention job: every `everyMs`, prunes ended blogs older than `days` in batches of `batch`, with a pause
 * between batches at least as long as the batch before it took (and at least `pauseMs`), so the job holds its
 * database connection at most about half the time and live work always gets the database in between, however slow
 * the batches become on a loaded machine. Several processes may run it at once: a batch skips the rows another one
 * is pruning.
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
  /** The shortest pause between batches; the pause is the longer of this and the last batch's time. */
  pauseMs?: number;
  now?: () => number;
  /** The monotonic clock a batch is timed with (milliseconds). */
  clock?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Creates the job; `start()` schedules it, `runOnce()` prunes everything due now. */
export function createRetention(opts: RetentionOptions) {
  const batch = opts.batch ?? 500;
  const pauseMs = opts.pauseMs ?? 20;
  const now = opts.now ?? Date.now;
  const clock = opts.clock ?? (() => performance.now());
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PrunedCounts> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined; // ends the pause early on stop()

  async function prune(): Promise<PrunedCounts> {
    const total: PrunedCounts = { blogs: 0, events: 0, refs: 0 };
    const cutoff = new Date(now() - opts.days * DAY_MS);
    while (!stopped) {
      const started = clock();
      const counts = await opts.repo.pruneBatch(cutoff, batch);
      const tookMs = clock() - started;
      total.blogs += counts.blogs;
      total.events += counts.events;
      total.refs += counts.refs;
      if (counts.blogs > 0) opts.onPruned?.(counts);
      if (counts.blogs < batch) break;
      await new Promise<void>((resolve) => {
        const pause = setTimeout(resolve, Math.max(pauseMs, Math.ceil(tookMs)));
        wake = () => (clearTimeout(pause), resolve());
      });
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
      wake?.();
      await running?.catch(() => undefined);
    },
  };
}
