/**
 * Scenario 3, idle scale: a million blogs waiting for a selection, bulk-inserted with SQL from the row of a real
 * blog that reached AWAITING_SELECTION; then the production composition is started as its own process on that
 * database (bench/lib/remote.child.ts: what `npm start` wires, with providers that wait like the remote services
 * under their real per-minute limits instead of the offline ones that render and write files on this CPU): time
 * from spawn to its `listening` log line and its memory; then, after the client's warm-up (WARM_UP_CHECKS), 500
 * selections/s over HTTP. The 202 is sent after
 * the transition is committed, so the HTTP latency is command → GENERATING_CONTENT committed. The client keeps
 * CLIENT_SOCKETS keep-alive connections, as a calling service would. Three repetitions, each a fresh process on the
 * same blogs selecting other ones (those of the previous repetition are put back as they were); medians reported.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { composeRuntime } from '../src/app/compose';
import { withFreshDatabase } from './lib/database';
import { createInstantProviders } from './lib/sim';
import { cleanEnv, exited, memoryOf, spawnTsx } from './lib/spawn';
import { median, medianSummary, round, summarize, type Summary } from './lib/stats';

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
  const config = loadConfig({
    DATABASE_URL: url,
    INKWELL_LOG_LEVEL: 'error',
    INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
  });
  let waiting: () => void = () => undefined;
  const reached = new Promise<void>((r) => (waiting = r));
  const { runtime } = await composeRuntime({
    config,
    logTo: { name: 'bench' },
    providers: () => createInstantProviders(),
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
              replace(replace(t.snapshot::text, 'TEMPLATEBLOG', 'idle-' || g), 'TEMPLATESTORE', 'store-' || (g % ${STORES}))::json,
              t.machine_version, t.view, t.wake_at
       from generate_series($1::int, $2::int) g, blogs t where t.blog_id = 'TEMPLATEBLOG'`,
      [from, Math.min(blogs, from + CHUNK - 1)],
    );
  }
  // Kept aside: putting the blogs a repetition selected back in AWAITING_SELECTION copies it again (resetSelected).
  await pool.query(`create table idle_template as select * from blogs where blog_id = 'TEMPLATEBLOG'`);
  await pool.query(`delete from blogs where blog_id = 'TEMPLATEBLOG'`);
  await settleStorage(pool);
}

/**
 * Vacuums, then checkpoints: writing a million rows leaves gigabytes of WAL behind, and the checkpoints it triggers
 * would otherwise run during the measurement (the server log showed one writing for 35 s of it).
 */
async function settleStorage(pool: pg.Pool): Promise<void> {
  await pool.query('vacuum analyze blogs');
  await pool.query('checkpoint');
}

/** Puts the blogs a repetition selected back as they were inserted (waiting, no events): the next one starts alike. */
async function resetSelected(pool: pg.Pool, ids: string[]): Promise<void> {
  await pool.query(
    `update blogs b set status = t.status, seq = t.seq, version = t.version,
            snapshot = replace(replace(t.snapshot::text, 'TEMPLATEBLOG', b.blog_id), 'TEMPLATESTORE', b.instance_id)::json,
            machine_version = t.machine_version, view = t.view, wake_at = t.wake_at
     from idle_template t where b.blog_id = any($1)`,
    [ids],
  );
  await pool.query('delete from outbox where blog_id = any($1)', [ids]);
  await pool.query('delete from provider_refs where blog_id = any($1)', [ids]);
  await settleStorage(pool);
}

/** One repetition: a fresh process on the same million waiting blogs, then the selections. */
interface IdleRun {
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

/**
 * Every repetition, and medians over them (each figure on its own; `selections` summed; `perSecond` of the
 * repetition with the median p99).
 */
export interface IdleResult extends IdleRun {
  blogs: number;
  stores: number;
  insertSeconds: number;
  runs: IdleRun[];
}

/** A client like a calling service has: a bounded pool of keep-alive connections (CLIENT_SOCKETS). */
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENT_SOCKETS });

/** Sends one request (JSON `body` if given) on the client's connections; resolves with the status once read. */
function send(port: number, method: 'GET' | 'POST', path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = http.request({ host: '127.0.0.1', port, path, method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Calls `start(i)` for i = 0 … total-1 at `rate` per second, each at its slot and not after the previous answer
 * (open loop); resolves when every call has settled.
 */
async function atRate(rate: number, total: number, start: (i: number) => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    for (; i < due; i++) calls.push(start(i));
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(calls);
}

/**
 * The caller as it is when commands start: a long-running service whose connections are open and whose HTTP code is
 * warm, against a process that its health checks have already reached. So `WARM_UP_CHECKS` GET /healthz at the
 * selection rate go first, unmeasured; without them the figures include this bench client's own start-up (a fresh
 * Node process opening 32 connections in its first second).
 */
const WARM_UP_CHECKS = 1000;

const pick = (s: Summary) => ({ p50: round(s.p50, 1), p99: round(s.p99, 1), max: round(s.max, 1) });

/** Sends `rate` selections per second for `seconds` (open loop: each at its slot, not after the previous answer). */
async function selectAtRate(port: number, rate: number, seconds: number, blogs: number, offset: number) {
  const total = rate * seconds;
  const step = Math.floor(blogs / total);
  const latencies: number[] = [];
  const ids: string[] = [];
  let accepted = 0;
  let failed = 0;
  const t0 = performance.now();
  const bySecond: number[][] = Array.from({ length: seconds + 1 }, () => []);
  const warm: number[] = [];
  await atRate(rate, total, (i) => {
    const n = 1 + offset + i * step;
    const id = `idle-${n}`;
    ids.push(id);
    const sent = performance.now();
    const body = JSON.stringify({ instanceId: `store-${n % STORES}`, ideaIndex: 0 });
    return send(port, 'POST', `/api/blogs/${id}/select`, body).then(
      (status) => {
        if (status === 202) {
          accepted++;
          latencies.push(performance.now() - sent);
          bySecond[Math.floor((sent - t0) / 1000)]?.push(performance.now() - sent);
          if (sent - t0 >= 1000) warm.push(performance.now() - sent);
        }
      },
      () => void failed++,
    );
  });
  const perSecond = bySecond
    .map((xs, second) => ({ second, n: xs.length, ...pick(summarize(xs)) }))
    .filter((s) => s.n > 0);
  return { latencies, ids, accepted, failed, total, perSecond, warm };
}

/** Spawns the production process on `url`, measures start and memory, sends the selections, stops it. */
async function runOnce(
  url: string,
  blogs: number,
  seconds: number,
  offset: number,
): Promise<IdleRun & { ids: string[] }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'inkwell-idle-'));
  let ready: (port: number) => void = () => undefined;
  const listening = new Promise<number>((r) => (ready = r));
  const started = performance.now();
  const child = spawnTsx(
    ['bench/lib/remote.child.ts'],
    cleanEnv({ PORT: '0', DATABASE_URL: url, INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'info' }),
    (line) => {
      if (!line.includes('"listening"')) return;
      ready((JSON.parse(line) as { port: number }).port);
    },
  );
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    const port = await Promise.race([
      listening,
      exited(child).then((code) => Promise.reject(new Error(`src/main.ts exited with ${code}`))),
    ]);
    const readyMs = performance.now() - started;
    const atReady = await memoryOf(child.pid!);
    await atRate(RATE, WARM_UP_CHECKS, () => send(port, 'GET', '/healthz'));
    const load = await selectAtRate(port, RATE, seconds, blogs, offset);
    const afterLoad = await memoryOf(child.pid!);
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from blogs where blog_id = any($1) and status <> 'AWAITING_SELECTION'`,
      [load.ids],
    );
    return {
      ids: load.ids,
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
}

export async function runIdle(quick: boolean, say: (line: string) => void): Promise<IdleResult> {
  const blogs = quick ? 50_000 : 1_000_000;
  const seconds = quick ? 5 : 20;
  const repetitions = quick ? 1 : 3;
  return withFreshDatabase(async (db) => {
    await makeTemplate(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const insertStarted = performance.now();
      await bulkInsert(pool, blogs);
      const insertSeconds = (performance.now() - insertStarted) / 1000;
      say(`  idle: ${blogs} waiting blogs inserted in ${round(insertSeconds, 1)} s`);
      const runs: IdleRun[] = [];
      for (let r = 0; r < repetitions; r++) {
        const { ids, ...run } = await runOnce(db.url, blogs, seconds, r);
        say(
          `  idle rep ${r + 1}/${repetitions}: ready in ${run.readyMs} ms, RSS ${run.rssAtReadyMb} MB; ` +
            `p50/p99 ${round(run.latencyMs.p50, 1)}/${round(run.latencyMs.p99, 1)} ms; ` +
            `p99 by second sent: ${run.perSecond.map((x) => round(x.p99)).join(' ')} ms`,
        );
        runs.push(run);
        await resetSelected(pool, ids);
      }
      const med = (f: (r: IdleRun) => number) => median(runs.map(f));
      const byP99 = [...runs].sort((a, b) => a.latencyMs.p99 - b.latencyMs.p99);
      const middle = byP99[Math.floor((byP99.length - 1) / 2)]!;
      const sum = (f: (r: IdleRun) => number) => runs.reduce((n, r) => n + f(r), 0);
      return {
        blogs,
        stores: STORES,
        insertSeconds: round(insertSeconds, 1),
        runs,
        readyMs: med((r) => r.readyMs),
        rssAtReadyMb: med((r) => r.rssAtReadyMb),
        rssAfterLoadMb: med((r) => r.rssAfterLoadMb),
        peakRssMb: med((r) => r.peakRssMb),
        selections: {
          rate: RATE,
          seconds,
          sent: sum((r) => r.selections.sent),
          accepted: sum((r) => r.selections.accepted),
          failed: sum((r) => r.selections.failed),
          committed: sum((r) => r.selections.committed),
        },
        latencyMs: medianSummary(runs.map((r) => r.latencyMs)),
        perSecond: middle.perSecond,
        warmP99Ms: med((r) => r.warmP99Ms),
      };
    } finally {
      await pool.end();
    }
  });
}
