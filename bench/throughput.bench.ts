/**
 * Scenario 2, persistence-bound: instant providers, idea blogs (5 persisted transitions each: created, content,
 * image, publishing, done) across 200 stores on the real PostgreSQL, created through the intake 64 at a time.
 * Beside it, in the same run and database: the single-row jsonb UPDATE rate from Node `pg` with 16 connections.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { openPostgres } from '../src/db/pg.client';
import { createLogger } from '../src/logger';
import { createRuntime } from '../src/runtime/runtime';
import { withFreshDatabase } from './lib/database';
import { createInstantProviders } from './lib/sim';
import { median, round } from './lib/stats';

const STORES = 200;
const CREATE_CONCURRENCY = 64;
const UPDATE_CONNECTIONS = 16;

/** Single-row jsonb UPDATEs by primary key, `connections` in a closed loop (16 by default), for `ms`. */
export async function measureUpdateRate(url: string, ms: number, connections = UPDATE_CONNECTIONS): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  await pool.query('create table if not exists update_probe (id int primary key, data jsonb not null)');
  const payload = JSON.stringify({ status: 'GENERATING_CONTENT', context: { note: 'x'.repeat(600) } });
  await pool.query(
    'insert into update_probe select g, $1::jsonb from generate_series(1, 10000) g on conflict do nothing',
    [payload],
  );
  let count = 0;
  const started = performance.now();
  const until = started + ms;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const id = 1 + Math.floor(Math.random() * 10000);
        await pool.query('update update_probe set data = $2::jsonb where id = $1', [id, payload]);
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
  seconds: number;
  /** Until the last create was committed (creates are one transaction each, the rest is batched). */
  createSeconds: number;
  transitions: number;
  transitionsPerSec: number;
  blogsPerSec: number;
  updateRatePerSec: number;
  /** The same UPDATEs one after the other on one connection: one transition, one transaction (context only). */
  updateRateOneConnPerSec: number;
}

async function runOnce(blogs: number, updateMs: number): Promise<Run> {
  return withFreshDatabase(async (db) => {
    const updateRatePerSec = await measureUpdateRate(db.url, updateMs);
    const updateRateOneConnPerSec = await measureUpdateRate(db.url, Math.min(updateMs, 2_000), 1);
    const config = loadConfig({
      INKWELL_LOG_LEVEL: 'error',
      INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
      INKWELL_NODE_ID: 'bench-throughput',
      INKWELL_MAX_ACTIVE_PER_STORE: String(blogs),
    });
    const log = createLogger('error', 'bench');
    let done = 0;
    const runtime = createRuntime({
      config,
      log,
      database: openPostgres(db.url, (err) => log.error({ err }, 'pool error')),
      providers: createInstantProviders(),
      onStatusChange: (c) => {
        if (c.status === 'DONE') done++;
      },
    });
    await runtime.start(false);
    const counter = new pg.Client({ connectionString: db.url });
    await counter.connect();
    const idea = { title: 'Throughput', summary: 'How many blogs per second?' };
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < blogs) {
          const i = next++;
          await runtime.intake.apply('create', { blogId: `t-${i}`, instanceId: `store-${i % STORES}`, idea });
        }
      }),
    );
    const createSeconds = (performance.now() - started) / 1000;
    const countDone = async () =>
      (await counter.query<{ n: number }>(`select count(*)::int as n from blogs where status = 'DONE'`)).rows[0]!.n;
    while (done < blogs || (await countDone()) < blogs) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await counter.query<{ n: number }>('select count(*)::int as n from outbox');
    const transitions = rows[0]!.n;
    await counter.end();
    await runtime.stop();
    return {
      blogs,
      seconds: round(seconds, 2),
      createSeconds: round(createSeconds, 2),
      transitions,
      transitionsPerSec: transitions / seconds,
      blogsPerSec: blogs / seconds,
      updateRatePerSec,
      updateRateOneConnPerSec,
    };
  });
}

export interface ThroughputResult {
  blogs: number;
  stores: number;
  runs: Run[];
  transitionsPerSec: number;
  blogsPerSec: number;
  updateRatePerSec: number;
  updateRateOneConnPerSec: number;
  /** Median over runs of (transitions/s ÷ UPDATE rate of the same run); target ≥ 1.5. */
  vsUpdateRate: number;
}

export async function runThroughput(quick: boolean, say: (line: string) => void): Promise<ThroughputResult> {
  const blogs = quick ? 2_000 : 20_000;
  const repetitions = quick ? 1 : 2;
  const runs: Run[] = [];
  for (let r = 0; r < repetitions; r++) {
    const run = await runOnce(blogs, quick ? 3_000 : 5_000);
    say(
      `  throughput rep ${r + 1}/${repetitions}: ${round(run.transitionsPerSec)} transitions/s, ` +
        `${round(run.blogsPerSec)} blogs/s, UPDATE ${round(run.updateRatePerSec)}/s`,
    );
    runs.push(run);
  }
  return {
    blogs,
    stores: STORES,
    runs: runs.map((r) => ({
      ...r,
      transitionsPerSec: round(r.transitionsPerSec),
      blogsPerSec: round(r.blogsPerSec),
      updateRatePerSec: round(r.updateRatePerSec),
      updateRateOneConnPerSec: round(r.updateRateOneConnPerSec),
    })),
    transitionsPerSec: median(runs.map((r) => r.transitionsPerSec)),
    blogsPerSec: median(runs.map((r) => r.blogsPerSec)),
    updateRatePerSec: median(runs.map((r) => r.updateRatePerSec)),
    updateRateOneConnPerSec: median(runs.map((r) => r.updateRateOneConnPerSec)),
    vsUpdateRate: median(runs.map((r) => r.transitionsPerSec / r.updateRatePerSec)),
  };
}
