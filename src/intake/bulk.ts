/**
 * Bulk retry and cancel: the blogs matching a filter, each sent through the same intake (and router) as a single
 * command, so every one is ordered, fenced, applied at most once and announced by its usual event. The work is
 * paced: a page of blogs at a time, a few commands in flight, and a turn of the event loop between pages, so live
 * commands arriving meanwhile are not queued behind thousands of bulk ones.
 */
import type { Logger } from '../logger';
import { CommandError } from '../errors';
import type { BulkCommandName, BulkRepo, BulkTarget } from '../db/bulk.repo';
import { describeIssues } from './command.schema';
import { bulkSchema, type BulkFilter } from './bulk.schema';
import type { Intake } from './intake';

/** The outcome of one blog of a bulk command. */
export type BulkOutcome = 'applied' | 'skipped' | 'failed';

/** What the bulk runner needs. */
export interface BulkDeps {
  /** The routed intake: each command runs at its store's owner. */
  intake: Intake;
  repo: BulkRepo;
  log: Logger;
  /** Counts outcomes (metrics). */
  onOutcome?: (name: BulkCommandName, outcome: BulkOutcome) => void;
  /** Blogs read per page (default 200). */
  pageSize?: number;
  /** Commands in flight at once (default 8). */
  parallel?: number;
}

/** The answer of a bulk command. */
export interface BulkResult {
  matched: number;
  applied: number;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Creates the bulk runner. */
export function createBulk(deps: BulkDeps) {
  const pageSize = deps.pageSize ?? 200;
  const parallel = deps.parallel ?? 8;

  async function applyOne(name: BulkCommandName, target: BulkTarget): Promise<BulkOutcome> {
    try {
      await deps.intake.apply(name, { blogId: target.blogId, instanceId: target.instanceId });
      return 'applied';
    } catch (err) {
      // Moved since it was selected (retried, cancelled or finished by someone else): nothing to do.
      if (err instanceof CommandError && (err.code === 'INVALID_STATE' || err.code === 'NOT_FOUND')) return 'skipped';
      deps.log.warn({ err, ...target, command: name }, 'bulk command failed for one blog');
      return 'failed';
    }
  }

  async function applyPage(name: BulkCommandName, page: BulkTarget[], counts: Record<BulkOutcome, number>) {
    let next = 0;
    const worker = async () => {
      while (next < page.length) {
        const outcome = await applyOne(name, page[next++]!);
        counts[outcome]++;
        deps.onOutcome?.(name, outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, page.length) }, worker));
  }

  return {
    /** Validates `body` and applies `name` to every matching blog (or only counts them with `dryRun`). */
    async run(name: BulkCommandName, body: unknown): Promise<BulkResult> {
      const parsed = bulkSchema.safeParse(body ?? {});
      if (!parsed.success) throw new CommandError('INVALID_PAYLOAD', describeIssues(parsed.error));
      const { dryRun, ...filter } = parsed.data;
      if (dryRun) return { matched: await deps.repo.count(name, filter), applied: 0 };
      return runAll(name, filter);
    },
  };

  async function runAll(name: BulkCommandName, filter: BulkFilter): Promise<BulkResult> {
    const counts: Record<BulkOutcome, number> = { applied: 0, skipped: 0, failed: 0 };
    const started = Date.now();
    let matched = 0;
    let after = '';
    deps.log.info({ command: name, filter }, `bulk ${name} started`);
    for (;;) {
      const page = await deps.repo.page(name, filter, after, pageSize);
      if (page.length === 0) break;
      matched += page.length;
      after = page[page.length - 1]!.blogId;
      await applyPage(name, page, counts);
      deps.log.info({ command: name, matched, ...counts }, `bulk ${name} progress`);
      await nextTurn();
    }
    deps.log.info({ command: name, matched, ...counts, ms: Date.now() - started }, `bulk ${name} done`);
    return { matched, applied: counts.applied };
  }
}

/** The bulk runner's interface. */
export type Bulk = ReturnType<typeof createBulk>;
