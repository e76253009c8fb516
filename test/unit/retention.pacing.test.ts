/**
 * Retention's pacing: the pause between two batches is at least as long as the batch before it took, so the job
 * holds its database connection at most about half the time, however slow its batches become.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { PrunedCounts } from '../../src/db/retention.repo';
import { createLogger } from '../../src/logger';
import { createRetention } from '../../src/runtime/retention';

/** A repository whose batches take `ms[i]` each (real time) and prune a full batch until the last one. */
function slowRepo(ms: number[], batch: number) {
  const spans: Array<{ start: number; end: number }> = [];
  return {
    spans,
    repo: {
      async pruneBatch(): Promise<PrunedCounts> {
        const i = spans.length;
        const start = performance.now();
        await new Promise((r) => setTimeout(r, ms[i] ?? 0));
        spans.push({ start, end: performance.now() });
        return { blogs: i < ms.length - 1 ? batch : 0, events: 0, refs: 0 };
      },
    },
  };
}

describe('retention pacing', () => {
  it('pauses after each batch at least as long as that batch took', async () => {
    const batch = 10;
    const { spans, repo } = slowRepo([120, 40, 200, 60, 150, 0], batch);
    const job = createRetention({ repo, log: createLogger('silent', 'test'), days: 30, batch });
    await job.runOnce();
    expect(spans).toHaveLength(6);
    const pauses = spans.slice(1).map((s, i) => ({
      took: Math.round(spans[i]!.end - spans[i]!.start),
      pause: Math.round(s.start - spans[i]!.end),
    }));
    console.log(`batch ms → pause ms: ${pauses.map((p) => `${p.took}→${p.pause}`).join(', ')}`);
    // A timer may fire a millisecond or two early by performance.now(); never a whole batch early.
    for (const p of pauses) expect(p.pause, JSON.stringify(p)).toBeGreaterThanOrEqual(p.took - 3);
    const busy = spans.reduce((sum, s) => sum + s.end - s.start, 0);
    const total = spans.at(-1)!.end - spans[0]!.start;
    expect(busy / total).toBeLessThanOrEqual(0.55);
  });

  it('keeps the shortest pause for quick batches, and stop() ends a long pause at once', async () => {
    const batch = 10;
    const quick = slowRepo([0, 0, 0], batch);
    await createRetention({
      repo: quick.repo,
      log: createLogger('silent', 'test'),
      days: 30,
      batch,
      pauseMs: 50,
    }).runOnce();
    expect(quick.spans[1]!.start - quick.spans[0]!.end).toBeGreaterThanOrEqual(47);

    const slow = slowRepo([400, 400, 400], batch);
    const job = createRetention({ repo: slow.repo, log: createLogger('silent', 'test'), days: 30, batch });
    const pass = job.runOnce();
    await new Promise((r) => setTimeout(r, 450)); // the first batch is done, its pause begun
    const t0 = performance.now();
    await job.stop();
    await pass;
    expect(performance.now() - t0).toBeLessThan(200);
    expect(slow.spans).toHaveLength(1);
  });
});
