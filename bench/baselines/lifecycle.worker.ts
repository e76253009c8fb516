/**
 * Baseline: the batch-polling lifecycle worker Inkwell replaces. Every poll it fetches up to 100 blogs needing
 * work (any stage, oldest first, at most 20 per store), advances each by one stage with Promise.all in sub-batches
 * of 50, then waits `pollMs` before the next poll. A blog therefore moves one stage per poll cycle, and a cycle
 * lasts as long as its slowest sub-batches.
 */
import type pg from 'pg';
import type { Providers } from '../../src/providers/providers';
import { advanceInSubBatches, fetchNeedingWork, PENDING_STATUS, type OnLegacyStatus } from './legacy.table';

/** A running worker; `stop()` resolves after the current cycle. */
export interface LegacyWorker {
  stop(): Promise<void>;
}

export function startLifecycleWorker(opts: {
  pool: pg.Pool;
  providers: Providers;
  pollMs: number;
  onStatus: OnLegacyStatus;
}): LegacyWorker {
  let stopped = false;
  const statuses = Object.values(PENDING_STATUS);
  const loop = (async () => {
    while (!stopped) {
      const rows = await fetchNeedingWork(opts.pool, statuses, 100, 20);
      await advanceInSubBatches(opts.pool, opts.providers, rows, opts.onStatus, 50);
      await new Promise((r) => setTimeout(r, opts.pollMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
