/**
 * Retention (issue #20): a million ended blogs (DONE and CANCELLED, ended 40 to 400 days ago, beyond the 30 days of
 * INKWELL_RETENTION_DAYS), each with the snapshot, outbox events and provider refs a real blog leaves, inserted with
 * set-based SQL from real template blogs (taken to DONE and CANCELLED by the runtime); plus a few hundred live blogs
 * waiting for a selection, as a running fleet has. Then, on its own database:
 *   - the sizes (pg_total_relation_size of blogs, outbox, provider_refs; pg_database_size);
 *   - `GET /api/blogs?…` through the real HTTP server (the production composition as its own process, as in the
 *     idle scenario), open loop, the four lists the dashboard and calling services ask for (see QUERIES);
 *   - pruning by the real retention job (createRetention + createRetentionRepo, their default batch and pause) in
 *     this process, the list load running meanwhile: the total time and every batch timed (one statement each, so
 *     a batch's time is how long its row locks were held);
 *   - the sizes and the lists again after a plain VACUUM (what autovacuum gives a running system: the space is
 *     reusable, the files do not shrink), and after VACUUM FULL (what an operator's maintenance window gives back).
 * The server's own retention job is kept out of the way (INKWELL_RETENTION_DAYS far in the past) so the pruning
 * measured is the one timed here. The events are dated within the last day: older published ones are deleted by the
 * relay's own 24 h outbox prune first, so in steady state retention finds fewer of them than here (the worst case).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { openPostgres } from '../src/db/pg.client';
import { createRetentionRepo } from '../src/db/retention.repo';
import { createLogger } from '../src/logger';
import { createRetention } from '../src/runtime/retention';
import { createRuntime } from '../src/app/runtime';
import { withFreshDatabase } from './lib/database';
import { createInstantProviders } from './lib/sim';
import { cleanEnv, exited, spawnTsx } from './lib/spawn';
import { round, summarize, type Summary } from './lib/stats';

const STORES = 1000;
const LIVE = 300;
const CHUNK = 100_000;
const DAYS = 30;
/** The lists measured, in turn: a store's ended posts and its latest blogs (a calling service), the owner panel and
 * the failed list (the dashboard: owner.js and app.js ask exactly these). */
const QUERIES = {
  storeDone: (n: number) => `/api/blogs?instanceId=store-${n % STORES}&status=DONE&limit=50`,
  storeLatest: (n: number) => `/api/blogs?instanceId=store-${n % STORES}&limit=50`,
  awaiting: () => '/api/blogs?status=AWAITING_SELECTION&limit=200',
  failed: () => '/api/blogs?status=FAILED&limit=50',
} as const;
type QueryName = keyof typeof QUERIES;

/** Sizes in MB. */
export interface Sizes {
  blogs: number;
  outbox: number;
  providerRefs: number;
  database: number;
}
/** One measured phase of lists: all requests, and p99 per list. */
export interface ListPhase {
  sent: number;
  failed: number;
  latencyMs: Summary;
  p99ByQuery: Record<QueryName, number>;
  /** p99 of the requests sent in each 10 s window, in order: whether a backlog built up. */
  p99By10s: number[];
}
export interface RetentionResult {
  blogs: number;
  live: number;
  stores: number;
  events: number;
  refs: number;
  insertSeconds: number;
  rate: number;
  /** The machine's 1-minute load average when the lists began and when they ended (it is shared). */
  loadAverage: { start: number; end: number };
  sizes: { before: Sizes; afterPrune: Sizes; afterVacuumFull: Sizes };
  lists: { before: ListPhase; duringPrune: ListPhase; afterPrune: ListPhase; afterVacuumFull: ListPhase };
  prune: {
    seconds: number;
    batches: number;
    batchSize: number;
    pruned: { blogs: number; events: number; refs: number };
    batchMs: Summary;
    vacuumSeconds: number;
    vacuumFullSeconds: number;
  };
}

/** Three real blogs by the runtime: one DONE, one CANCELLED, one waiting for its selection (the row templates). */
async function makeTemplates(url: string): Promise<void> {
  const config = loadConfig({ INKWELL_LOG_LEVEL: 'error', INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused' });
  const log = createLogger('error', 'bench');
  const database = openPostgres(url, (err) => log.error({ err }, 'pool error'));
  const waiters = new Map<string, () => void>();
  const reach = (key: string) => new Promise<void>((r) => waiters.set(key, r));
  const runtime = createRuntime({
    config,
    log,
    database,
    providers: createInstantProviders(),
    onStatusChange: (c) => waiters.get(`${c.blogId}:${c.status}`)?.(),
  });
  await runtime.start(false);
  const blog = (blogId: string) => ({ blogId, instanceId: 'TSTORE' });
  for (const id of ['TDONE', 'TCANCEL', 'TWAIT']) {
    const waiting = reach(`${id}:AWAITING_SELECTION`);
    await runtime.intake.apply('create', { ...blog(id), topic: 'Coffee' });
    await waiting;
  }
  const done = reach('TDONE:DONE');
  const cancelled = reach('TCANCEL:CANCELLED');
  await runtime.intake.apply('select', { ...blog('TDONE'), ideaIndex: 0 });
  await runtime.intake.apply('cancel', blog('TCANCEL'));
  await Promise.all([done, cancelled]);
  await runtime.stop(); // flushes the commits and relays the events
}

/** `g`'s blog id, its store, and `expr` with the template's ids replaced by them (SQL). */
const swap = (expr: string) =>
  `replace(replace(${expr}, t.blog_id, 'ret-' || g), 'TSTORE', 'store-' || (g % ${STORES}))`;

async function bulkInsert(pool: pg.Pool, blogs: number): Promise<{ events: number; refs: number }> {
  for (let from = 1; from <= blogs; from += CHUNK) {
    const range = [from, Math.min(blogs, from + CHUNK - 1)];
    // One in ten cancelled; ended 40 to 400 days ago, created ten minutes before.
    const each = `from generate_series($1::int, $2::int) g
      join blogs t on t.blog_id = case when g % 10 = 0 then 'TCANCEL' else 'TDONE' end`;
    const ended = `now() - (40 + g % 360) * interval '1 day' - (g % 86400) * interval '1 second'`;
    await pool.query(
      `insert into blogs (blog_id, instance_id, status, seq, version, snapshot, machine_version, view, created_at, updated_at)
       select 'ret-' || g, 'store-' || (g % ${STORES}), t.status, t.seq, t.version, ${swap('t.snapshot::text')}::json,
              t.machine_version, ${swap('t.view::text')}::json, ${ended} - interval '10 minutes', ${ended} ${each}`,
      range,
    );
    await pool.query(
      `insert into outbox (blog_id, instance_id, seq, payload, created_at)
       select 'ret-' || g, 'store-' || (g % ${STORES}), o.seq, ${swap('o.payload::text')}::json,
              now() - (g % 1200) * interval '1 minute' ${each} join outbox o on o.blog_id = t.blog_id`,
      range,
    );
    // What the real adapters leave for a published blog: the prediction, and the Wix media, draft and post.
    await pool.query(
      `insert into provider_refs (blog_id, key, value)
       select 'ret-' || g, k.key, k.value || g ${each}
       cross join (values ('replicate.prediction', 'p2x9c7k4qdrm80cm'), ('wix.draft', '3f1c9a2e-5b7d-4e8f-9a1b-'),
         ('wix.media', '{"id":"8d3b2f_1c4e9a7b5d6f4e2a9c8b7a6d5e4f3a2b~mv2.webp","url":"https://static.wixstatic.com/media/8d3b2f_'),
         ('wix.post', '{"id":"a7c4e1b9-2d3f-4a5b-8c6d-9e0f1a2b3c4d","url":"https://example.wixsite.com/blog/post/')) k(key, value)
       where t.status = 'DONE'`,
      range,
    );
  }
  // A running fleet's live blogs, created in the last hour.
  await pool.query(
    `insert into blogs (blog_id, instance_id, status, seq, version, snapshot, machine_version, view, wake_at, created_at, updated_at)
     select 'ret-live-' || g, 'store-' || (g % ${STORES}), t.status, t.seq, t.version,
            replace(replace(t.snapshot::text, 'TWAIT', 'ret-live-' || g), 'TSTORE', 'store-' || (g % ${STORES}))::json,
            t.machine_version, t.view, now() + interval '1 day', now() - g * interval '10 seconds', now()
     from generate_series(1, ${LIVE}) g, blogs t where t.blog_id = 'TWAIT'`,
  );
  await pool.query(`delete from outbox where blog_id in ('TDONE', 'TCANCEL', 'TWAIT')`);
  await pool.query(`delete from blogs where blog_id in ('TDONE', 'TCANCEL', 'TWAIT')`);
  // Every event inserted counts as published: the cursor is past them, as the relay would have left it.
  await pool.query(
    `update outbox_cursor set (tx, last_id) = (select tx, id from outbox order by tx desc, id desc limit 1) where id = 1`,
  );
  const [ev, rf] = await Promise.all([
    pool.query<{ n: number }>('select count(*)::int as n from outbox'),
    pool.query<{ n: number }>('select count(*)::int as n from provider_refs'),
  ]);
  await pool.query('vacuum analyze');
  await pool.query('checkpoint'); // the WAL of the insert is not written out during the measurements
  return { events: ev.rows[0]!.n, refs: rf.rows[0]!.n };
}

async function sizes(pool: pg.Pool): Promise<Sizes> {
  const { rows } = await pool.query<Record<keyof Sizes, string>>(
    `select pg_total_relation_size('blogs') as blogs, pg_total_relation_size('outbox') as outbox,
            pg_total_relation_size('provider_refs') as "providerRefs", pg_database_size(current_database()) as database`,
  );
  const mb = (v: string) => round(Number(v) / 2 ** 20, 1);
  const r = rows[0]!;
  return { blogs: mb(r.blogs), outbox: mb(r.outbox), providerRefs: mb(r.providerRefs), database: mb(r.database) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One GET; resolves with the status once the body is read. */
function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Lists at `rate` per second (open loop, the four in turn) until `until()` is true after at least `seconds`. */
async function listLoad(port: number, rate: number, seconds: number, until: () => boolean = () => true) {
  const names = Object.keys(QUERIES) as QueryName[];
  const all: number[] = [];
  const windows: number[][] = [];
  const by = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<QueryName, number[]>;
  let failed = 0;
  const calls: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; ;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= seconds * 1000 && until()) break;
    for (const due = Math.floor((elapsed / 1000) * rate) + 1; i < due; i++) {
      const name = names[i % names.length]!;
      const sent = performance.now();
      calls.push(
        get(port, QUERIES[name](i * 7919)).then(
          (status) => {
            if (status !== 200) return void failed++;
            const ms = performance.now() - sent;
            all.push(ms);
            (windows[Math.floor((sent - t0) / 10_000)] ??= []).push(ms);
            by[name].push(ms);
          },
          () => void failed++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(calls);
  const p99ByQuery = Object.fromEntries(names.map((n) => [n, round(summarize(by[n]).p99, 1)])) as Record<
    QueryName,
    number
  >;
  const p99By10s = Array.from(windows, (w) => round(summarize(w ?? []).p99, 1));
  return { sent: calls.length, failed, latencyMs: summarize(all), p99ByQuery, p99By10s };
}

/** The production composition on `url` as its own process, its retention job kept off these blogs. */
async function startServer(url: string, dataDir: string) {
  let ready: (port: number) => void = () => undefined;
  const listening = new Promise<number>((r) => (ready = r));
  const env = { PORT: '0', DATABASE_URL: url, INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'info' };
  const child = spawnTsx(
    ['bench/lib/remote.child.ts'],
    cleanEnv({ ...env, INKWELL_RETENTION_DAYS: '100000' }),
    (line) => line.includes('"listening"') && ready((JSON.parse(line) as { port: number }).port),
  );
  const port = await Promise.race([
    listening,
    exited(child).then((code) => Promise.reject(new Error(`the server exited with ${code}`))),
  ]);
  return { port, child };
}

export async function runRetention(quick: boolean, say: (line: string) => void): Promise<RetentionResult> {
  // INKWELL_BENCH_RETENTION_BLOGS: another count, for a look between the two sizes.
  const blogs = Number(process.env.INKWELL_BENCH_RETENTION_BLOGS ?? (quick ? 20_000 : 1_000_000));
  const rate = 100;
  const seconds = quick ? 4 : 20;
  return withFreshDatabase(async (db) => {
    await makeTemplates(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'inkwell-retention-'));
    const log = createLogger('error', 'bench');
    const database = openPostgres(db.url, (err) => log.error({ err }, 'pool error'));
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      const t0 = performance.now();
      const { events, refs } = await bulkInsert(pool, blogs);
      const insertSeconds = round((performance.now() - t0) / 1000, 1);
      const before = await sizes(pool);
      say(`  retention: ${blogs} ended blogs, ${events} events, ${refs} refs inserted in ${insertSeconds} s`);
      server = await startServer(db.url, dataDir);
      const { port } = server;
      await listLoad(port, rate, 2); // warm-up, unmeasured
      const loadStart = round(os.loadavg()[0]!, 2);
      const listsBefore = await listLoad(port, rate, seconds);
      say(`  retention: lists before p99 ${round(listsBefore.latencyMs.p99, 1)} ms`);

      // The real job, its batches timed: each is one statement, so its row locks are held that long.
      const repo = createRetentionRepo(database.db);
      const batchMs: number[] = [];
      const timed = {
        async pruneBatch(cutoff: Date, limit: number) {
          const started = performance.now();
          const counts = await repo.pruneBatch(cutoff, limit);
          batchMs.push(performance.now() - started);
          return counts;
        },
      };
      const job = createRetention({ repo: timed, log, days: DAYS });
      const pruneStarted = performance.now();
      let pruning = true;
      const pass = job.runOnce().finally(() => (pruning = false));
      const during = listLoad(port, rate, 1, () => !pruning);
      const pruned = await pass;
      const pruneSeconds = round((performance.now() - pruneStarted) / 1000, 1);
      const duringPrune = await during;
      say(`  retention: pruned ${pruned.blogs} blogs in ${pruneSeconds} s, ${batchMs.length} batches`);

      const v0 = performance.now();
      await pool.query('vacuum analyze');
      const vacuumSeconds = round((performance.now() - v0) / 1000, 1);
      const afterPrune = await sizes(pool);
      const listsAfter = await listLoad(port, rate, seconds);
      const f0 = performance.now();
      await pool.query('vacuum full analyze blogs, outbox, provider_refs');
      const vacuumFullSeconds = round((performance.now() - f0) / 1000, 1);
      const afterVacuumFull = await sizes(pool);
      await listLoad(port, rate, 2); // the server's first reads after the rewrite, unmeasured
      const listsAfterFull = await listLoad(port, rate, seconds);
      return {
        blogs,
        live: LIVE,
        stores: STORES,
        events,
        refs,
        insertSeconds,
        rate,
        loadAverage: { start: loadStart, end: round(os.loadavg()[0]!, 2) },
        sizes: { before, afterPrune, afterVacuumFull },
        lists: { before: listsBefore, duringPrune, afterPrune: listsAfter, afterVacuumFull: listsAfterFull },
        prune: {
          seconds: pruneSeconds,
          batches: batchMs.length,
          batchSize: 500,
          pruned,
          batchMs: summarize(batchMs),
          vacuumSeconds,
          vacuumFullSeconds,
        },
      };
    } finally {
      if (server) {
        server.child.kill('SIGTERM');
        await exited(server.child);
      }
      await database.close();
      await pool.end();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
