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
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { openPostgres } from '../src/db/pg.client';
import { createRetentionRepo } from '../src/db/retention.repo';
import { createLogger } from '../src/logger';
import { createRetention } from '../src/runtime/retention';
import { composeRuntime } from '../src/app/compose';
import { ADMIN_URL, withFreshDatabase, type FreshDatabase } from './lib/database';
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
  /** p99 of the requests sent in each 10 s window, in order: whether a backlog built up (one run only: pruning). */
  p99By10s: number[];
}
/** One interleaved round: which copy, the load average when it began, its p50 and p99. */
export interface Round {
  db: 'kept' | 'pruned';
  load: number;
  p50: number;
  p99: number;
}
/** The lists against both copies, in interleaved rounds. */
export interface Interleaved {
  kept: ListPhase;
  pruned: ListPhase;
  rounds: Round[];
}
export interface RetentionResult {
  blogs: number;
  live: number;
  stores: number;
  events: number;
  refs: number;
  insertSeconds: number;
  cloneSeconds: number;
  rate: number;
  /** Seconds per interleaved round. */
  roundSeconds: number;
  /** before: either copy before pruning; kept: the unpruned copy at the end; then the pruned copy. */
  sizes: { before: Sizes; kept: Sizes; afterPrune: Sizes; afterVacuumFull: Sizes };
  lists: { duringPrune: ListPhase; interleaved: Interleaved; afterVacuumFull: Interleaved };
  prune: {
    seconds: number;
    batches: number;
    batchSize: number;
    pruned: { blogs: number; events: number; refs: number };
    batchMs: Summary;
    /** The share of the pruning time a batch was running (its connection busy). */
    busyShare: number;
    /** The machine's 1-minute load average when pruning began and ended (it is shared). */
    loadAverage: { start: number; end: number };
    vacuumSeconds: number;
    vacuumFullSeconds: number;
  };
}

/** Three real blogs by the runtime: one DONE, one CANCELLED, one waiting for its selection (the row templates). */
async function makeTemplates(url: string): Promise<void> {
  const config = loadConfig({
    DATABASE_URL: url,
    INKWELL_LOG_LEVEL: 'error',
    INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
  });
  const waiters = new Map<string, () => void>();
  const reach = (key: string) => new Promise<void>((r) => waiters.set(key, r));
  const { runtime } = await composeRuntime({
    config,
    logTo: { name: 'bench' },
    providers: () => createInstantProviders(),
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

/** One list sample: which list, when it was sent (ms since the phase began) and its latency. */
interface Sample {
  name: QueryName;
  at: number;
  ms: number;
}

/** Lists at `rate` per second (open loop, the four in turn) until `until()` is true after at least `seconds`. */
async function listLoad(port: number, rate: number, seconds: number, until: () => boolean = () => true) {
  const names = Object.keys(QUERIES) as QueryName[];
  const samples: Sample[] = [];
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
            samples.push({ name, at: sent - t0, ms: performance.now() - sent });
          },
          () => void failed++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(calls);
  return { sent: calls.length, failed, samples };
}

type Run = Awaited<ReturnType<typeof listLoad>>;

/** The figures of a set of list runs taken together. */
function phaseOf(runs: Run[]): ListPhase {
  const names = Object.keys(QUERIES) as QueryName[];
  const samples = runs.flatMap((r) => r.samples);
  const p99ByQuery = Object.fromEntries(
    names.map((n) => [n, round(summarize(samples.filter((s) => s.name === n).map((s) => s.ms)).p99, 1)]),
  ) as Record<QueryName, number>;
  const windows: number[][] = [];
  for (const r of runs.length === 1 ? runs : [])
    for (const s of r.samples) (windows[Math.floor(s.at / 10_000)] ??= []).push(s.ms);
  return {
    sent: runs.reduce((n, r) => n + r.sent, 0),
    failed: runs.reduce((n, r) => n + r.failed, 0),
    latencyMs: summarize(samples.map((s) => s.ms)),
    p99ByQuery,
    p99By10s: Array.from(windows, (w) => round(summarize(w ?? []).p99, 1)),
  };
}

/** Interleaved rounds against both servers (ABBA: kept, pruned, pruned, kept, …), the same count each. */
async function interleaved(ports: { kept: number; pruned: number }, rate: number, roundSeconds: number, pairs: number) {
  // Warm-ups, unmeasured; the kept copy's last, so that its first round (like every round after a switch, when the
  // other copy's pages filled shared_buffers) is as often the first after a switch as the pruned copy's are.
  await listLoad(ports.pruned, rate, 1);
  await listLoad(ports.kept, rate, 1);
  const runs: Record<keyof typeof ports, Run[]> = { kept: [], pruned: [] };
  const rounds: Round[] = [];
  for (let i = 0; i < pairs; i++) {
    const order: Array<keyof typeof ports> = i % 2 === 0 ? ['kept', 'pruned'] : ['pruned', 'kept'];
    for (const db of order) {
      const load = round(os.loadavg()[0]!, 2);
      const run = await listLoad(ports[db], rate, roundSeconds);
      runs[db].push(run);
      const ms = run.samples.map((s) => s.ms);
      rounds.push({ db, load, p50: round(summarize(ms).p50, 1), p99: round(summarize(ms).p99, 1) });
    }
  }
  return { kept: phaseOf(runs.kept), pruned: phaseOf(runs.pruned), rounds };
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

/** A copy of database `from` (no session may be connected to it), dropped with `from`'s own cleanup by the caller. */
async function cloneDatabase(from: FreshDatabase): Promise<FreshDatabase> {
  const name = `${from.name}_pruned`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    // FILE_COPY: copies the files after a checkpoint, instead of writing the whole database through the WAL.
    await admin.query(`create database "${name}" template "${from.name}" strategy = file_copy`);
  } finally {
    await admin.end();
  }
  const url = new URL(from.url);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function runRetention(quick: boolean, say: (line: string) => void): Promise<RetentionResult> {
  // INKWELL_BENCH_RETENTION_BLOGS: another count, for a look between the two sizes.
  const blogs = Number(process.env.INKWELL_BENCH_RETENTION_BLOGS ?? (quick ? 20_000 : 1_000_000));
  const rate = 100;
  const [roundSeconds, pairs] = quick ? [2, 3] : [10, 6];
  return withFreshDatabase(async (db) => {
    await makeTemplates(db.url);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-retention-'));
    const log = createLogger('error', 'bench');
    const servers: Array<Awaited<ReturnType<typeof startServer>>> = [];
    let copy: FreshDatabase | undefined;
    let database: ReturnType<typeof openPostgres> | undefined;
    const pools: pg.Pool[] = [];
    try {
      const t0 = performance.now();
      const inserting = new pg.Pool({ connectionString: db.url, max: 2 });
      const { events, refs } = await bulkInsert(inserting, blogs).finally(() => inserting.end());
      const insertSeconds = round((performance.now() - t0) / 1000, 1);
      say(`  retention: ${blogs} ended blogs, ${events} events, ${refs} refs inserted in ${insertSeconds} s`);
      const c0 = performance.now();
      copy = await cloneDatabase(db);
      const cloneSeconds = round((performance.now() - c0) / 1000, 1);
      const kept = new pg.Pool({ connectionString: db.url, max: 2 });
      const pruned = new pg.Pool({ connectionString: copy.url, max: 2 });
      pools.push(kept, pruned);
      await pruned.query('vacuum analyze'); // a new database's statistics: as the kept copy's after the insert
      const before = await sizes(kept);
      say(`  retention: cloned in ${cloneSeconds} s; ${before.database} MB each`);
      servers.push(await startServer(db.url, dataDir), await startServer(copy.url, dataDir));
      const ports = { kept: servers[0]!.port, pruned: servers[1]!.port };
      await listLoad(ports.kept, rate, 2); // warm-up of both, unmeasured
      await listLoad(ports.pruned, rate, 2);

      // The real job on the pruned copy, its batches timed: each is one statement, so its row locks are held that
      // long. Its pacing (a pause at least as long as the batch before) is the job's own.
      database = openPostgres(copy.url, (err) => log.error({ err }, 'pool error'));
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
      const loadDuring = [round(os.loadavg()[0]!, 2)];
      const pruneStarted = performance.now();
      let pruning = true;
      const pass = job.runOnce().finally(() => (pruning = false));
      const during = listLoad(ports.pruned, rate, 1, () => !pruning);
      const prunedCounts = await pass;
      const pruneSeconds = round((performance.now() - pruneStarted) / 1000, 1);
      loadDuring.push(round(os.loadavg()[0]!, 2));
      const duringPrune = phaseOf([await during]);
      const busyShare = round(batchMs.reduce((a, b) => a + b, 0) / 1000 / pruneSeconds, 2);
      say(`  retention: pruned ${prunedCounts.blogs} blogs in ${pruneSeconds} s, ${batchMs.length} batches`);

      const v0 = performance.now();
      await pruned.query('vacuum analyze');
      const vacuumSeconds = round((performance.now() - v0) / 1000, 1);
      const afterPrune = await sizes(pruned);
      const lists = await interleaved(ports, rate, roundSeconds, pairs);
      say(
        `  retention: interleaved p99 kept ${round(lists.kept.latencyMs.p99, 1)} ms, pruned ${round(lists.pruned.latencyMs.p99, 1)} ms`,
      );
      const f0 = performance.now();
      await pruned.query('vacuum full analyze blogs, outbox, provider_refs');
      const vacuumFullSeconds = round((performance.now() - f0) / 1000, 1);
      const afterVacuumFull = await sizes(pruned);
      const listsFull = await interleaved(ports, rate, roundSeconds, pairs);
      say(
        `  retention: after VACUUM FULL p99 kept ${round(listsFull.kept.latencyMs.p99, 1)} ms, pruned ${round(listsFull.pruned.latencyMs.p99, 1)} ms`,
      );
      return {
        blogs,
        live: LIVE,
        stores: STORES,
        events,
        refs,
        insertSeconds,
        cloneSeconds,
        rate,
        roundSeconds,
        sizes: { kept: await sizes(kept), afterPrune, afterVacuumFull, before },
        lists: { duringPrune, interleaved: lists, afterVacuumFull: listsFull },
        prune: {
          seconds: pruneSeconds,
          batches: batchMs.length,
          batchSize: 500,
          pruned: prunedCounts,
          batchMs: summarize(batchMs),
          busyShare,
          loadAverage: { start: loadDuring[0]!, end: loadDuring[1]! },
          vacuumSeconds,
          vacuumFullSeconds,
        },
      };
    } finally {
      for (const server of servers) {
        server.child.kill('SIGTERM');
        await exited(server.child);
      }
      await database?.close();
      await Promise.all(pools.map((p) => p.end()));
      await copy?.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
