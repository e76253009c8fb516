/**
 * Passivation (needs PostgreSQL): 10,000 blogs waiting for a selection do not stay in memory. The process's
 * memory stays flat while they are created and after a restart, no actor is live for them, and a selection on
 * any of them proceeds at once. Runs in test/faults (one file at a time) so that RSS is not shared with others.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http, startRuntime, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres } from '../support/servers';

const BLOGS = 10_000;

function rssMb(rt: RuntimeProcess): number {
  const status = readFileSync(`/proc/${rt.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function metric(rt: RuntimeProcess, name: string): Promise<number> {
  const text = (await http(rt.base, 'GET', '/metrics')).body as string;
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

await describeWithPostgres('idle blogs are passivated (needs PostgreSQL)', (db) => {
  let dataDir: string;
  const running: RuntimeProcess[] = [];
  const start = async () => {
    // Log level info: startRuntime waits for the 'listening' line of npm start.
    const rt = await startRuntime(
      { DATABASE_URL: db().url, INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'info', PORT: '0' },
      'src/main.ts',
    );
    running.push(rt);
    return rt;
  };
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-idle-'));
  });
  afterAll(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`keeps memory flat with ${BLOGS} blogs awaiting selection, across a restart`, async () => {
    const rt = await start();
    const waiting = async () => {
      const res = await http(rt.base, 'GET', '/api/blogs?status=AWAITING_SELECTION&limit=1');
      return res.status === 200 ? true : undefined;
    };
    await until('API up', waiting);
    const createBatch = async (from: number, to: number) => {
      const queue = Array.from({ length: to - from }, (_, i) => from + i);
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
            const res = await http(rt.base, 'POST', '/api/blogs', {
              blogId: `idle-${i}`,
              instanceId: `store-${i % 50}`,
              topic: `topic ${i}`,
            });
            expect(res.status).toBe(202);
          }
        }),
      );
    };
    const settled = async () =>
      until(
        'all created blogs awaiting selection',
        async () => ((await metric(rt, 'inkwell_live_actors')) === 0 ? true : undefined),
        60_000,
        250,
      );

    await createBatch(0, 1000);
    await settled();
    const rssAt1k = rssMb(rt);
    await createBatch(1000, BLOGS);
    await settled();
    const rssAtAll = rssMb(rt);
    console.log(`[idle] RSS after 1,000: ${rssAt1k.toFixed(0)} MB; after ${BLOGS}: ${rssAtAll.toFixed(0)} MB`);
    expect(await metric(rt, 'inkwell_live_actors')).toBe(0);
    // The structural check is the one above (no actor is live for a waiting blog). RSS only guards against
    // unbounded growth: V8 keeps the heap's high-water mark after 9,000 creations (40–80 MB seen here), and the
    // clean comparison is after the restart below.
    expect(rssAtAll - rssAt1k, 'memory grows with working blogs, not with all blogs').toBeLessThan(150);

    rt.proc.kill('SIGTERM');
    expect(await rt.exited).toBe(0);
    const again = await start();
    const startedAt = Date.now();
    await until('restarted API up', async () =>
      (await http(again.base, 'GET', '/healthz')).status === 200 ? true : undefined,
    );
    const rssAfterRestart = rssMb(again);
    console.log(
      `[idle] after restart: ${rssAfterRestart.toFixed(0)} MB, live actors ${await metric(again, 'inkwell_live_actors')}, up in ${Date.now() - startedAt} ms`,
    );
    expect(await metric(again, 'inkwell_live_actors')).toBe(0);
    expect(rssAfterRestart).toBeLessThan(rssAt1k + 40);

    const pick = `idle-${Math.floor(Math.random() * BLOGS)}`;
    const before = Date.now();
    const res = await http(again.base, 'POST', `/api/blogs/${pick}/select`, {
      instanceId: `store-${Number(pick.slice(5)) % 50}`,
      ideaIndex: 0,
    });
    const ms = Date.now() - before;
    console.log(`[idle] selection of ${pick} answered in ${ms} ms with ${res.body.status}`);
    expect(res.status).toBe(202);
    expect(res.body.status).not.toBe('AWAITING_SELECTION');
    // The time is only printed (88 ms when measured): selection latency on idle blogs is bench/idle.bench.ts's figure,
    // measured there under load on a million blogs; a bound here loose enough never to flake would hide regressions.
  }, 600_000);
});
