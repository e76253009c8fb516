/**
 * Baseline: the older stage-by-stage worker. Every poll it takes the stages in pipeline order (ideas, content,
 * image, publish); for each it fetches up to 100 blogs waiting for that stage (at most 20 per store) and runs them
 * with Promise.all in sub-batches of 50, then moves to the next stage; after the last stage it waits `pollMs`.
 * A blog can go through several stages in one cycle, but every stage waits for the whole batch of the previous one.
 */
import type pg from 'pg';
import type { Providers } from '../../src/providers/providers';
import { advanceInSubBatches, fetchNeedingWork, PENDING_STATUS, type OnLegacyStatus } from './legacy.table';
import type { LegacyWorker } from './lifecycle.worker';

export function startStageWorker(opts: {
  pool: pg.Pool;
  providers: Providers;
  pollMs: number;
  onStatus: OnLegacyStatus;
}): LegacyWorker {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const status of Object.values(PENDING_STATUS)) {
        const rows = await fetchNeedingWork(opts.pool, [status], 100, 20);
        await advanceInSubBatches(opts.pool, opts.providers, rows, opts.onStatus, 50);
      }
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
