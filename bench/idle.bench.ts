/**
 * Scenario 3, idle scale: a million blogs waiting for a selection, bulk-inserted with SQL from the row of a real
 * blog that reached AWAITING_SELECTION; then the production composition is started as its own process on that
 * database (bench/lib/remote.child.ts: what `npm start` wires, with providers that wait like the remote services
 * under their real per-minute limits instead of the offline ones that render and write files on this CPU): time
 * from spawn to its `listening` log line and its memory; then 500 selections/s over HTTP. The 202 is sent after
 * the transition is committed, so the HTTP latency is command → GENERATING_CONTENT committed. The client keeps
 * CLIENT_SOCKETS keep-alive connections, as a calling service would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { openPostgres } from '../src/db/pg.client';
import { createLogger } from '../src/logger';
import { createRuntime } from '../src/runtime/runtime';
import { withFreshDatabase } from './lib/database';
import { createInstantProviders } from './lib/sim';
import { cleanEnv, exited, memoryOf, spawnTsx } from './lib/spawn';
import { round, summarize, type Summary } from './lib/stats';

const STORES = 1000;
const RATE = 500;
const CHUNK = 100_000;
/**
 * The caller's keep-alive connections. Latency is taken before a request is queued in the client, so waiting for
 * a free connection counts; an unbounded client (fetch's default) instead opens a new connection for every
 * concurrent request of the first burst, which a service calling Inkwell 500 times a second would not do.
 */
const CLIENT_SOCKETS = 32;

/** One real blog taken to AWAITING_SELECTION by the runtime: the template row for the bulk insert. */
async function makeTemplate(url: string): Promise<void> {
  const config = loadConfig({ INKWELL_LOG_LEVEL: 'error', INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused' });
  const log = createLogger('error', 'bench');
  const database = openPostgres(url, (err) => log.error({ err }, 'pool error'));
  let waiting: () => void = () => undefined;
  const reached = new Promise<void>((r) => (waiting = r));
  const runtime = createRuntime({
    config,
    log,
    database,
    providers: createInstantProviders(),
    onStatusChange: (c) => c.status === 'AWAITING_SELECTION' && waiting(),
  });
  await runtime.start(false);
  await runtime.intake.apply('create', { blogId: 'TEMPLATEBLOG', instanceId: 'TEMPLATESTORE', topic: 'Coffee' });
  await reached;
  await runtime.stop(); // flushes the commit
}

async function bulkInsert(pool: pg.Pool, blogs: number): Promise<void> {
  for (let from = 1; from <= blogs; from += CHUNK) {
    await pool.query(
      `insert into blogs (blog_id, instance_id, status, seq, version, snapshot, machine_version, view, wake_at)
       select 'idle-' || g, 'store-' || (g % ${STORES}), t.status, t.seq, t.version,
              replace(replace(t.snapshot::text, 'TEMPLATEBLOG', 'idle-' || g), 'TEMPLATESTORE', 'store-' || (g % ${STORES}))::jsonb,
              t.machine_version, t.view, t.wake_at
       from generate_series($1::int, $2::int) g, blogs t where t.blog_id = 'TEMPLATEBLOG'`,
      [from, Math.min(blogs, from + CHUNK - 1)],
    );
  }
  await pool.query(`delete from blogs where blog_id = 'TEMPLATEBLOG'`);
  await pool.query('vacuum analyze blogs');
}

export interface IdleResult {
  blogs: number;
  stores: number;
  insertSeconds: number;
  readyMs: number;
  rssAtReadyMb: number;
  rssAfterLoadMb: number;
  peakRssMb: number;
  selections: { rate: number; seconds: number; sent: number; accepted: number; failed: number; committed: number };
  latencyMs: Summary;
  /** Latency by the second the selection was sent in: where the tail comes from. */
  perSecond: Array<{ second: number; n: number; p50: number; p99: number; max: number }>;
  /** p99 of the selections sent after the first second (the process's code is warm by then). */
  warmP99Ms: number;
}

/** A client like a calling service has: a bounded pool of keep-alive connections (CLIENT_SOCKETS). */
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENT_SOCKETS });

/** POSTs `body` as JSON; resolves with the status once the answer is read. */
function post(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const pick = (s: Summary) => ({ p50: round(s.p50, 1), p99: round(s.p99, 1), max: round(s.max, 1) });

/** Sends `rate` selections per second for `seconds` (open loop: each at its slot, not after the previous answer). */
async function selectAtRate(port: number, rate: number, seconds: number, blogs: number) {
  const total = rate * seconds;
  const step = Math.floor(blogs / total);
  const latencies: number[] = [];
  const ids: string[] = [];
  let accepted = 0;
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now();
  const bySecond: number[][] = Array.from({ length: seconds + 1 }, () => []);
  const warm: number[] = [];
  for (let i = 0; i < total;) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate) + 1;
    for (; i < Math.min(due, total); i++) {
      const n = 1 + i * step;
      const id = `idle-${n}`;
      ids.push(id);
      const sent = performance.now();
      inFlight.push(
        post(port, `/api/blogs/${id}/select`, JSON.stringify({ instanceId: `store-${n % STORES}`, ideaIndex: 0 })).then(
          (status) => {
            if (status === 202) {
              accepted++;
              latencies.push(performance.now() - sent);
              bySecond[Math.floor((sent - t0) / 1000)]?.push(performance.now() - sent);
              if (sent - t0 >= 1000) warm.push(performance.now() - sent);
            }
          },
          () => void failed++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inFlight);
  const perSecond = bySecond
    .map((xs, second) => ({ second, n: xs.length, ...pick(summarize(xs)) }))
    .filter((s) => s.n > 0);
  return { latencies, ids, accepted, failed, total, perSecond, warm };
}

export async function runIdle(quick: boolean, say: (line: string) => void): Promise<IdleResult> {
  const blogs = quick ? 50_000 : 1_000_000;
  const seconds = quick ? 5 : 20;
  return withFreshDatabase(async (db) => {
    await makeTemplate(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const insertStarted = performance.now();
    await bulkInsert(pool, blogs);
    const insertSeconds = (performance.now() - insertStarted) / 1000;
    say(`  idle: ${blogs} waiting blogs inserted in ${round(insertSeconds, 1)} s`);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'inkwell-idle-'));
    let ready: (port: number) => void = () => undefined;
    const listening = new Promise<number>((r) => (ready = r));
    const started = performance.now();
    const child = spawnTsx(
      ['bench/lib/remote.child.ts'],
      cleanEnv({ PORT: '0', DATABASE_URL: db.url, INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'info' }),
      (line) => {
        if (!line.includes('"listening"')) return;
        ready((JSON.parse(line) as { port: number }).port);
      },
    );
    try {
      const port = await Promise.race([
        listening,
        exited(child).then((code) => Promise.reject(new Error(`src/main.ts exited with ${code}`))),
      ]);
      const readyMs = performance.now() - started;
      const atReady = await memoryOf(child.pid!);
      say(`  idle: ready in ${round(readyMs)} ms, RSS ${atReady.rssMb} MB`);
      const load = await selectAtRate(port, RATE, seconds, blogs);
      const afterLoad = await memoryOf(child.pid!);
      say(`  idle: p99 by second sent: ${load.perSecond.map((x) => round(x.p99)).join(' ')} ms`);
      const { rows } = await pool.query<{ n: number }>(
        `select count(*)::int as n from blogs where blog_id = any($1) and status <> 'AWAITING_SELECTION'`,
        [load.ids],
      );
      return {
        blogs,
        stores: STORES,
        insertSeconds: round(insertSeconds, 1),
        readyMs: round(readyMs),
        rssAtReadyMb: atReady.rssMb,
        rssAfterLoadMb: afterLoad.rssMb,
        peakRssMb: afterLoad.peakMb,
        selections: {
          rate: RATE,
          seconds,
          sent: load.total,
          accepted: load.accepted,
          failed: load.failed,
          committed: rows[0]!.n,
        },
        latencyMs: summarize(load.latencies),
        perSecond: load.perSecond,
        warmP99Ms: summarize(load.warm).p99,
      };
    } finally {
      child.kill('SIGTERM');
      await exited(child);
      await pool.end();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}
