/**
 * Retention on the embedded default: ended blogs (DONE, CANCELLED) older than INKWELL_RETENTION_DAYS keep their row
 * and public view but lose snapshot, events and provider refs, in batches; newer or unfinished blogs are untouched;
 * a command on a pruned blog is still answered; the metrics count what was pruned.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/database';
import { rowsOf } from '../../src/db/database';
import { openPglite } from '../../src/db/pglite.client';
import { createRefsRepo } from '../../src/db/refs.repo';
import { createRetentionRepo } from '../../src/db/retention.repo';
import { CommandError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createRetention } from '../../src/runtime/retention';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';

let dataDir: string;
let runtime: Runtime;
let database: Database;
const log = createLogger('silent', 'test');

async function until(what: string, check: () => Promise<boolean>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statusOf = async (blogId: string) => (await runtime.intake.get(blogId, undefined)).status;

/** Per blog: whether it still has a snapshot, how many outbox events and provider refs. */
async function stateOf(blogId: string) {
  const [row] = rowsOf<{ snapshot: boolean; events: number; refs: number }>(
    await database.db.execute(sql`
      select (b.snapshot::text <> 'null') as snapshot,
        (select count(*)::int from outbox o where o.blog_id = b.blog_id) as events,
        (select count(*)::int from provider_refs r where r.blog_id = b.blog_id) as refs
      from blogs b where b.blog_id = ${blogId}`),
  );
  return row;
}

const age = (ids: string[], days: number) =>
  database.db.execute(
    sql`update blogs set updated_at = now() - make_interval(days => ${days}) where blog_id in ${ids}`,
  );

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-retention-'));
  const config = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'silent', INKWELL_RETENTION_DAYS: '30' });
  database = await openPglite(undefined);
  ({ runtime } = await composeRuntime({ config, database }));
  await runtime.start(false);
  const refs = createRefsRepo(database.db);
  const make = (blogId: string, more: Record<string, unknown> = { idea: { title: blogId } }) =>
    runtime.intake.apply('create', { blogId, instanceId: 'store-r', ...more });
  for (const id of ['old-1', 'old-2', 'old-3', 'old-4', 'old-5', 'new-1']) await make(id);
  await make('old-cancelled', { topic: 'to cancel' });
  await make('old-waiting', { topic: 'waits' });
  await until('blogs to settle', async () => {
    const done = await Promise.all(['old-1', 'old-2', 'old-3', 'old-4', 'old-5', 'new-1'].map(statusOf));
    const waiting = await Promise.all(['old-cancelled', 'old-waiting'].map(statusOf));
    return done.every((s) => s === 'DONE') && waiting.every((s) => s === 'AWAITING_SELECTION');
  });
  await runtime.intake.apply('cancel', { blogId: 'old-cancelled', instanceId: 'store-r' });
  for (const id of ['old-1', 'old-cancelled', 'new-1'])
    await refs.put({ blogId: id, instanceId: 'store-r' }, 'wix.draft', `draft-${id}`);
  await until('events to be published', async () =>
    (await runtime.http.inject('/metrics')).body.includes('inkwell_outbox_lag 0'),
  );
  await age(['old-1', 'old-2', 'old-3', 'old-4', 'old-5', 'old-cancelled', 'old-waiting'], 31);
  await age(['new-1'], 29);
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('retention', { timeout: 60_000 }, () => {
  it('prunes ended blogs past the retention in batches, keeps their public view, and touches nothing else', async () => {
    const before = await runtime.intake.get('old-1', 'store-r');
    expect(await stateOf('old-1')).toEqual({ snapshot: true, events: expect.any(Number), refs: 1 });
    expect((await stateOf('old-1'))!.events).toBeGreaterThan(0);

    const batches: number[] = [];
    const job = createRetention({
      repo: createRetentionRepo(database.db),
      log,
      days: 30,
      batch: 2,
      onPruned: (c) => batches.push(c.blogs),
    });
    const total = await job.runOnce();
    expect(total).toEqual({ blogs: 6, events: expect.any(Number), refs: 2 });
    expect(batches).toEqual([2, 2, 2]);

    for (const id of ['old-1', 'old-2', 'old-3', 'old-4', 'old-5', 'old-cancelled']) {
      expect(await stateOf(id), id).toEqual({ snapshot: false, events: 0, refs: 0 });
    }
    expect(await stateOf('new-1')).toMatchObject({ snapshot: true, refs: 1 });
    expect((await stateOf('old-waiting'))!.snapshot).toBe(true);

    // The public view stays: GET and lists answer as before; a command is refused as for any ended blog.
    expect(await runtime.intake.get('old-1', 'store-r')).toEqual(before);
    const listed = await runtime.intake.list({ instanceId: 'store-r', status: 'DONE', limit: 50 });
    expect(listed.items.map((b) => b.blogId).sort()).toEqual(['new-1', 'old-1', 'old-2', 'old-3', 'old-4', 'old-5']);
    const refused = await runtime.intake.apply('cancel', { blogId: 'old-2', instanceId: 'store-r' }).catch((e) => e);
    expect(refused).toBeInstanceOf(CommandError);
    expect((refused as CommandError).code).toBe('INVALID_STATE');
    expect(await runtime.intake.get('old-waiting', 'store-r')).toMatchObject({ status: 'AWAITING_SELECTION' });
    expect((await job.runOnce()).blogs).toBe(0);
  });

  it('counts what it pruned in the metrics', async () => {
    await age(['new-1'], 31);
    expect((await runtime.retention.runOnce()).blogs).toBe(1);
    const metrics = (await runtime.http.inject('/metrics')).body;
    expect(metrics).toContain('inkwell_retention_pruned_total{what="blogs"} 1');
    expect(metrics).toContain('inkwell_retention_pruned_total{what="refs"} 1');
  });
});
