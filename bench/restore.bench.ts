/**
 * Restore benchmark: how long `runtime.start(false)` (migrate + rehydrate) takes to bring 1,000 stored working
 * blogs back as live actors, and what they cost in memory, on PostgreSQL and on in-memory PGlite.
 * Blogs are parked in GENERATING_CONTENT by providers whose calls hang until aborted.
 * Run: `npm run bench:restore` (with --expose-gc, so memory is read after a GC; DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; a fresh database
 * is created and dropped). Prints a table and writes bench/results/restore.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { rowsOf, type Database } from '../src/db/database';
import { openPglite } from '../src/db/pglite.client';
import { openPostgres } from '../src/db/pg.client';
import { createLogger } from '../src/logger';
import type { Providers } from '../src/providers/providers';
import { composeRuntime } from '../src/app/compose';
import { measuredCommit } from './lib/commit';

const BLOGS = 1000;
const STORES = 10;
const RUNS = 3;
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const config = loadConfig({
  ...process.env,
  INKWELL_MAX_ACTIVE_PER_STORE: String(BLOGS),
  INKWELL_LOG_LEVEL: 'error',
  INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
});
const log = createLogger('error', 'bench');

/** Resolves never; rejects when the call is aborted (the runtime stops or the blog is cancelled). */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
}

const hangingProviders: Providers = {
  writer: { name: 'hanging', generateIdeas: (c) => hang(c.signal), generateArticle: (c) => hang(c.signal) },
  images: { name: 'hanging', createHeaderImage: (c) => hang(c.signal) },
  publisher: { name: 'hanging', publish: (c) => hang(c.signal) },
};

/** A runtime on `database` with the in-process bus (whatever NATS_URL says): only start and stop are measured. */
async function runtimeOn(database: Database) {
  const { runtime } = await composeRuntime({
    config,
    logTo: { name: 'bench' },
    database,
    bus: 'memory',
    providers: () => hangingProviders,
    drainGraceMs: 0,
  });
  return runtime;
}

async function countParked(database: Database): Promise<number> {
  const result = await database.db.execute(
    sql`select count(*)::int as n from blogs where status = 'GENERATING_CONTENT'`,
  );
  return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
}

/** Creates the blogs through the intake and waits until every one is committed in GENERATING_CONTENT. */
async function park(database: Database): Promise<number> {
  const started = Date.now();
  const runtime = await runtimeOn(database);
  await runtime.start(false);
  const idea = { title: 'Restoring a thousand actors', summary: 'How fast does a runtime come back?' };
  for (let i = 0; i < BLOGS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, BLOGS - i) }, (_, j) =>
        runtime.intake.apply('create', { blogId: `b-${i + j}`, instanceId: `store-${(i + j) % STORES}`, idea }),
      ),
    );
  }
  const deadline = Date.now() + 60_000;
  while ((await countParked(database)) < BLOGS) {
    if (Date.now() > deadline) throw new Error('blogs were not parked within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  await runtime.stop();
  return Date.now() - started;
}

interface Run {
  ms: number;
  restored: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  /** JS heap held by the live actors (after a GC when `--expose-gc` is on). */
  heapDeltaMb: number;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One timed start: migrate + rehydrate into live actors, then a stop that leaves the rows as they were. */
async function timeRestore(database: Database): Promise<Run> {
  const runtime = await runtimeOn(database);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const started = performance.now();
  const { restored } = await runtime.start(false);
  const ms = performance.now() - started;
  gc?.();
  const after = process.memoryUsage();
  if (restored !== BLOGS) throw new Error(`restored ${restored} of ${BLOGS}`);
  await runtime.stop();
  return {
    ms: Math.round(ms),
    restored,
    rssBeforeMb: mb(before.rss),
    rssAfterMb: mb(after.rss),
    heapDeltaMb: mb(after.heapUsed - before.heapUsed),
  };
}

/** Parks the blogs then times RUNS restores; `open` gives a fresh handle per run, `close` ends the backing store. */
async function benchDriver(name: string, open: () => Promise<Database>, close: () => Promise<void>) {
  const parkMs = await park(await open());
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await timeRestore(await open()));
  await close();
  return {
    driver: name,
    blogs: BLOGS,
    stores: STORES,
    parkMs,
    medianMs: median(runs.map((r) => r.ms)),
    medianRssDeltaMb: median(runs.map((r) => Math.round((r.rssAfterMb - r.rssBeforeMb) * 10) / 10)),
    medianHeapDeltaMb: median(runs.map((r) => r.heapDeltaMb)),
    runs,
  };
}

async function onPostgres() {
  const name = `inkwell_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  admin.on('error', (err) => log.error({ err }, 'admin connection error'));
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    return await benchDriver(
      'postgres',
      () => Promise.resolve(openPostgres(url.toString(), (err) => log.error({ err }, 'pool error'))),
      () => Promise.resolve(),
    );
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
}

async function onPglite() {
  const memory = await openPglite(undefined);
  // The runtime closes its database on stop; in memory that would lose the blogs, so it only closes at the end.
  const keepOpen: Database = { ...memory, close: () => Promise.resolve() };
  return benchDriver(
    'pglite (memory)',
    () => Promise.resolve(keepOpen),
    () => memory.close(),
  );
}

const results = [await onPostgres(), await onPglite()];
console.log(`restore of ${BLOGS} working blogs across ${STORES} stores: start(false) = migrate + rehydrate`);
console.table(
  results.map((r) => ({
    driver: r.driver,
    'median ms': r.medianMs,
    'runs ms': r.runs.map((x) => x.ms).join(' / '),
    'RSS before MB': r.runs.map((x) => x.rssBeforeMb).join(' / '),
    'RSS after MB': r.runs.map((x) => x.rssAfterMb).join(' / '),
    'median RSS Δ MB': r.medianRssDeltaMb,
    'median heap Δ MB': r.medianHeapDeltaMb,
    'park ms': r.parkMs,
  })),
);
const out = new URL('./results/restore.json', import.meta.url);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const run = { at: new Date().toISOString(), commit: measuredCommit(), node: process.version };
await writeFile(out, `${JSON.stringify({ ...run, results }, null, 2)}\n`);
console.log(`written ${out.pathname}`);
