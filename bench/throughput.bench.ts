/**
 * Scenario 2, persistence-bound: instant providers, idea blogs (5 persisted status changes each: created, content,
 * image, publishing, done) across 200 stores on the real PostgreSQL, created through the intake 64 at a time by the
 * runtime processes themselves (bench/lib/throughput.child.ts). Run twice: in one runtime process, and in one
 * process per core on their own stores (how Inkwell is deployed on a multi-core machine: a Node process runs its
 * JavaScript on one core). Beside it, in the same run and on the same server: the single-row json UPDATE rate from
 * Node `pg` with 16 connections (and with one).
 *
 * The headline runs set INKWELL_MAX_ACTIVE_PER_STORE to the blogs of the process, so that every blog may work at
 * once and the figure is the persistence's, not the fairness cap's; a third run per repetition keeps the default
 * cap (DEFAULT_CAP per store) and is reported beside it.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../src/config';
import { withFreshDatabase } from './lib/database';
import { cleanEnv, exited, spawnTsx } from './lib/spawn';
import { median, round } from './lib/stats';

const STORES = 200;
const UPDATE_CONNECTIONS = 16;
/** INKWELL_MAX_ACTIVE_PER_STORE when unset. */
const DEFAULT_CAP = loadConfig({}).INKWELL_MAX_ACTIVE_PER_STORE;

/** Single-row json UPDATEs by primary key (json, like the snapshot column), `connections` in a closed loop (16 by default), for `ms`. */
export async function measureUpdateRate(url: string, ms: number, connections = UPDATE_CONNECTIONS): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  await pool.query('create table if not exists update_probe (id int primary key, data json not null)');
  const payload = JSON.stringify({ status: 'GENERATING_CONTENT', context: { note: 'x'.repeat(600) } });
  await pool.query(
    'insert into update_probe select g, $1::json from generate_series(1, 10000) g on conflict do nothing',
    [payload],
  );
  let count = 0;
  const started = performance.now();
  const until = started + ms;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const id = 1 + Math.floor(Math.random() * 10000);
        await pool.query('update update_probe set data = $2::json where id = $1', [id, payload]);
        count++;
      }
    }),
  );
  const rate = count / ((performance.now() - started) / 1000);
  await pool.end();
  return rate;
}

interface Run {
  blogs: number;
  /** Runtime processes (each its own stores), started and warmed up before the clock starts. */
  processes: number;
  seconds: number;
  /** Until the last create was committed (creates are batched like the transitions). */
  createSeconds: number;
  transitions: number;
  transitionsPerSec: number;
  blogsPerSec: number;
  /** CPU time of the runtime processes per finished blog (user + system). */
  cpuUsPerBlog: number;
}

interface ChildReport {
  ready?: boolean;
  done?: number;
  createSeconds?: number;
  seconds?: number;
  cpuSeconds?: number;
}

/** `processes` runtimes on `url`, `blogs` idea blogs shared out between them, each on its own stores. */
export async function runRuntimes(url: string, blogs: number, processes: number, defaultCap = false): Promise<Run> {
  const reports: ChildReport[][] = [];
  const children = Array.from({ length: processes }, (_, k) => {
    reports.push([]);
    return spawnTsx(
      ['bench/lib/throughput.child.ts'],
      cleanEnv({
        DATABASE_URL: url,
        BENCH_BLOGS: String(Math.floor(blogs / processes) + (k < blogs % processes ? 1 : 0)),
        BENCH_STORES: String(Math.ceil(STORES / processes)),
        BENCH_PART: `p${k}`,
        ...(defaultCap ? { BENCH_DEFAULT_CAP: '1' } : {}),
      }),
      (line) => {
        if (line.startsWith('{')) reports[k]!.push(JSON.parse(line) as ChildReport);
      },
    );
  });
  const until = async (what: string, ok: (r: ChildReport) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!reports.every((rs) => rs.some(ok))) {
      if (children.some((c) => c.exitCode !== null)) throw new Error(`a throughput runtime exited before ${what}`);
      if (Date.now() > deadline) throw new Error(`throughput runtimes not ${what} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await until('ready', (r) => r.ready === true, 60_000);
    const started = performance.now();
    children.forEach((c) => c.kill('SIGUSR2'));
    await until('done', (r) => r.done !== undefined, 600_000);
    const seconds = (performance.now() - started) / 1000;
    const finals = reports.map((rs) => rs.find((r) => r.done !== undefined)!);
    const counter = new pg.Client({ connectionString: url });
    await counter.connect();
    const count = async (q: string) => (await counter.query<{ n: number }>(q)).rows[0]!.n;
    const doneRows = await count(`select count(*)::int as n from blogs where status = 'DONE'`);
    const transitions = await count('select count(*)::int as n from outbox');
    await counter.end();
    if (doneRows !== blogs) throw new Error(`${doneRows} of ${blogs} blogs are DONE in the database`);
    const cpuSeconds = finals.reduce((s, r) => s + (r.cpuSeconds ?? 0), 0);
    return {
      blogs,
      processes,
      seconds: round(seconds, 2),
      createSeconds: round(Math.max(...finals.map((r) => r.createSeconds ?? 0)), 2),
      transitions,
      transitionsPerSec: transitions / seconds,
      blogsPerSec: blogs / seconds,
      cpuUsPerBlog: round((cpuSeconds * 1e6) / blogs),
    };
  } finally {
    children.forEach((c) => c.kill('SIGTERM'));
    await Promise.all(children.map(exited));
  }
}

/** One repetition: the UPDATE probes, then one runtime process, then one per core, each on a fresh database. */
async function runOnce(blogs: number, updateMs: number, cores: number) {
  const [updateRatePerSec, updateRateOneConnPerSec] = await withFreshDatabase(async (db) => [
    await measureUpdateRate(db.url, updateMs),
    await measureUpdateRate(db.url, Math.min(updateMs, 2_000), 1),
  ]);
  const single = await withFreshDatabase((db) => runRuntimes(db.url, blogs, 1));
  const perCore = cores > 1 ? await withFreshDatabase((db) => runRuntimes(db.url, blogs, cores)) : single;
  const perCoreDefaultCap = await withFreshDatabase((db) => runRuntimes(db.url, blogs, cores, true));
  return { updateRatePerSec, updateRateOneConnPerSec, single, perCore, perCoreDefaultCap };
}

export interface ThroughputResult {
  blogs: number;
  stores: number;
  /** Runtime processes of the per-core run (one per core, as deployed: `npm start` per core on one database). */
  processes: number;
  runs: Array<{
    updateRatePerSec: number;
    updateRateOneConnPerSec: number;
    single: Run;
    perCore: Run;
    perCoreDefaultCap: Run;
  }>;
  /** INKWELL_MAX_ACTIVE_PER_STORE of the headline runs (every blog of a process may work at once) and of the third. */
  maxActivePerStore: { headline: string; defaultCapRun: number };
  /** Medians of the per-core run with the default INKWELL_MAX_ACTIVE_PER_STORE. */
  defaultCapTransitionsPerSec: number;
  defaultCapBlogsPerSec: number;
  /** Medians over repetitions: one process per core (the headline) and a single process. */
  transitionsPerSec: number;
  blogsPerSec: number;
  singleTransitionsPerSec: number;
  singleBlogsPerSec: number;
  cpuUsPerBlog: number;
  updateRatePerSec: number;
  updateRateOneConnPerSec: number;
  /** Median over repetitions of (per-core transitions/s ÷ the UPDATE rate of the same repetition); target ≥ 1.5. */
  vsUpdateRate: number;
  /** The same for a single runtime process. */
  singleVsUpdateRate: number;
}

export async function runThroughput(quick: boolean, say: (line: string) => void): Promise<ThroughputResult> {
  const blogs = quick ? 2_000 : 20_000;
  const repetitions = quick ? 1 : 2;
  const cores = availableParallelism();
  const runs: ThroughputResult['runs'] = [];
  for (let r = 0; r < repetitions; r++) {
    const run = await runOnce(blogs, quick ? 3_000 : 5_000, cores);
    say(
      `  throughput rep ${r + 1}/${repetitions}: UPDATE ${round(run.updateRatePerSec)}/s; ` +
        `${cores} processes ${round(run.perCore.transitionsPerSec)} transitions/s, ${round(run.perCore.blogsPerSec)} blogs/s; ` +
        `1 process ${round(run.single.transitionsPerSec)} transitions/s, ${round(run.single.blogsPerSec)} blogs/s; ` +
        `${cores} processes with the default cap of ${DEFAULT_CAP} per store ` +
        `${round(run.perCoreDefaultCap.transitionsPerSec)} transitions/s, ${round(run.perCoreDefaultCap.blogsPerSec)} blogs/s`,
    );
    runs.push(run);
  }
  const rounded = (r: Run): Run => ({
    ...r,
    transitionsPerSec: round(r.transitionsPerSec),
    blogsPerSec: round(r.blogsPerSec),
  });
  return {
    blogs,
    stores: STORES,
    processes: cores,
    runs: runs.map((r) => ({
      updateRatePerSec: round(r.updateRatePerSec),
      updateRateOneConnPerSec: round(r.updateRateOneConnPerSec),
      single: rounded(r.single),
      perCore: rounded(r.perCore),
      perCoreDefaultCap: rounded(r.perCoreDefaultCap),
    })),
    maxActivePerStore: { headline: 'the blogs of the process', defaultCapRun: DEFAULT_CAP },
    defaultCapTransitionsPerSec: median(runs.map((r) => r.perCoreDefaultCap.transitionsPerSec)),
    defaultCapBlogsPerSec: median(runs.map((r) => r.perCoreDefaultCap.blogsPerSec)),
    transitionsPerSec: median(runs.map((r) => r.perCore.transitionsPerSec)),
    blogsPerSec: median(runs.map((r) => r.perCore.blogsPerSec)),
    singleTransitionsPerSec: median(runs.map((r) => r.single.transitionsPerSec)),
    singleBlogsPerSec: median(runs.map((r) => r.single.blogsPerSec)),
    cpuUsPerBlog: median(runs.map((r) => r.single.cpuUsPerBlog)),
    updateRatePerSec: median(runs.map((r) => r.updateRatePerSec)),
    updateRateOneConnPerSec: median(runs.map((r) => r.updateRateOneConnPerSec)),
    vsUpdateRate: median(runs.map((r) => r.perCore.transitionsPerSec / r.updateRatePerSec)),
    singleVsUpdateRate: median(runs.map((r) => r.single.transitionsPerSec / r.updateRatePerSec)),
  };
}
