/**
 * Scenario 1, latency-bound: the old system's workload (200 blogs from 20 stores arriving over a window, half from
 * topics with the owner's pick after a short delay, half from ideas), simulated providers with the old stage times
 * ÷ 100 and the same limits, run through Inkwell, the lifecycle worker and the stage-by-stage worker, one after
 * the other in each repetition, on the same fresh PostgreSQL database. Per blog: arrival → DONE.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/config';
import type { Providers } from '../src/providers/providers';
import { composeRuntime } from '../src/app/compose';
import { startLifecycleWorker, type LegacyWorker } from './baselines/lifecycle.worker';
import { createLegacyTable, insertLegacyBlog, selectLegacyIdea, type OnLegacyStatus } from './baselines/legacy.table';
import { startStageWorker } from './baselines/stage.worker';
import { withFreshDatabase } from './lib/database';
import { createLimiters, createSimulatedProviders, LIMITS, SCALE, selectionDelay, STAGE_MS } from './lib/sim';
import { median, medianSummary, ratio, round, summarize, type Summary } from './lib/stats';
import { idealMakespan, idealOf, makeWorkload, rateLimitBound, type BlogSpec } from './lib/workload';

const BLOGS = 200;
const STORES = 20;
/** Arrivals spread over 10 s (1,000 s before scaling): the busiest limiter (OpenAI) is about 40 % utilised. */
const WINDOW_MS = 10_000;
/** The old workers polled every 5 s; ÷ 100 like the stage times. */
export const POLL_MS = 5_000 / SCALE;
const RUN_TIMEOUT_MS = 180_000;

export type SystemName = 'inkwell' | 'lifecycle worker' | 'stage worker';

export interface Run {
  latencies: number[];
  makespanMs: number;
}

/** Feeds the workload in over time, tracks arrival and finish per blog, resolves when all are done. */
export async function drive(
  specs: BlogSpec[],
  arrive: (spec: BlogSpec) => Promise<void>,
  finished: Map<string, number>,
) {
  const arrived = new Map<string, number>();
  const t0 = performance.now();
  await Promise.all(
    specs.map(
      (spec) =>
        new Promise<void>((resolve, reject) =>
          setTimeout(() => {
            arrived.set(spec.blogId, performance.now());
            arrive(spec).then(resolve, reject);
          }, spec.arrivalMs),
        ),
    ),
  );
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  while (finished.size < specs.length) {
    if (Date.now() > deadline) throw new Error(`only ${finished.size} of ${specs.length} blogs finished`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const latencies = specs.map((s) => finished.get(s.blogId)! - arrived.get(s.blogId)!);
  return { latencies, makespanMs: Math.max(...finished.values()) - t0 } satisfies Run;
}

async function runInkwell(url: string, seed: string, specs: BlogSpec[]): Promise<Run> {
  const config = loadConfig({
    DATABASE_URL: url,
    INKWELL_LOG_LEVEL: 'error',
    INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
    INKWELL_NODE_ID: `bench-latency-${seed}`,
  });
  const finished = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const { log, runtime } = await composeRuntime({
    config,
    logTo: { name: 'bench' },
    providers: () => createSimulatedProviders(seed, createLimiters()),
    onStatusChange: (change) => {
      if (change.status === 'DONE') finished.set(change.blogId, performance.now());
      if (change.status !== 'AWAITING_SELECTION') return;
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          const body = { blogId: change.blogId, instanceId: change.instanceId, ideaIndex: 0 };
          runtime.intake.apply('select', body).catch((err: unknown) => log.error({ err }, 'select failed'));
        },
        selectionDelay(seed, change.blogId),
      );
      timers.add(timer);
    },
  });
  await runtime.start(false);
  try {
    return await drive(
      specs,
      async (spec) => {
        const body =
          spec.kind === 'topic'
            ? { blogId: spec.blogId, instanceId: spec.instanceId, topic: 'Brewing coffee at home' }
            : { blogId: spec.blogId, instanceId: spec.instanceId, idea: { title: 'Cold brew', summary: 'Slowly.' } };
        await runtime.intake.apply('create', body);
      },
      finished,
    );
  } finally {
    timers.forEach(clearTimeout);
    await runtime.stop();
  }
}

/** An old worker over `specs`; `providers` default to the simulated ones (the real path passes HTTP adapters). */
export async function runLegacy(
  url: string,
  seed: string,
  specs: BlogSpec[],
  start: typeof startLifecycleWorker,
  providers: Providers = createSimulatedProviders(seed, createLimiters()),
) {
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  pool.on('error', (err) => console.error(`legacy worker pool: ${err.message}`)); // a server restart is not a crash
  const finished = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const onStatus: OnLegacyStatus = (id, status) => {
    if (status === 'done') finished.set(id, performance.now());
    if (status !== 'awaiting_selection') return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        selectLegacyIdea(pool, id).catch((err: unknown) => console.error(`select failed: ${String(err)}`));
      },
      selectionDelay(seed, id),
    );
    timers.add(timer);
  };
  await createLegacyTable(pool);
  // Both baselines use the same ids (so the same stage times): each starts from an empty table.
  await pool.query('truncate legacy_blogs');
  const worker: LegacyWorker = start({ pool, providers, pollMs: POLL_MS, onStatus });
  try {
    return await drive(specs, (spec) => insertLegacyBlog(pool, spec), finished);
  } finally {
    timers.forEach(clearTimeout);
    await worker.stop();
    await Promise.all((providers.limiters ?? []).map((l) => l.stop()));
    await pool.end();
  }
}

/** One system's figures: medians over the repetitions. */
export interface SystemResult {
  system: SystemName;
  runs: number;
  latencyMs: Summary;
  makespanMs: number;
  /** Latency quantile ÷ the same quantile of the ideals; makespan ÷ the ideal makespan. */
  vsIdeal: { p50: number; p95: number; max: number; makespan: number };
  /** Median over blogs of latency ÷ its own ideal, and its p95. */
  perBlogRatio: { p50: number; p95: number };
  makespansMs: number[];
}

export interface LatencyResult {
  blogs: number;
  stores: number;
  arrivalWindowMs: number;
  pollMs: number;
  stageMs: typeof STAGE_MS;
  limits: typeof LIMITS;
  rateLimitWindowMs: number;
  idealMs: Summary;
  idealMakespanMs: number;
  rateLimitBoundMs: number;
  systems: SystemResult[];
  /** Lifecycle p95 ÷ Inkwell p95 (target ≥ 2). */
  inkwellP95AdvantageOverLifecycle: number;
}

export async function runLatency(quick: boolean, say: (line: string) => void): Promise<LatencyResult> {
  const repetitions = quick ? 1 : 3;
  return withFreshDatabase(async (db) => {
    const raw = new Map<SystemName, { run: Run; ideals: number[]; idealMakespan: number }[]>();
    const ideals: number[][] = [];
    const bounds: number[] = [];
    const makespanIdeals: number[] = [];
    for (let r = 0; r < repetitions; r++) {
      const seed = `r${r}`;
      const specs = makeWorkload(seed, BLOGS, STORES, WINDOW_MS);
      const ideal = specs.map((s) => idealOf(seed, s));
      ideals.push(ideal);
      bounds.push(rateLimitBound(seed, specs));
      makespanIdeals.push(idealMakespan(seed, specs));
      const systems: [SystemName, () => Promise<Run>][] = [
        ['inkwell', () => runInkwell(db.url, seed, specs)],
        ['lifecycle worker', () => runLegacy(db.url, seed, specs, startLifecycleWorker)],
        ['stage worker', () => runLegacy(db.url, seed, specs, startStageWorker)],
      ];
      for (const [name, run] of systems) {
        const result = await run();
        say(`  latency rep ${r + 1}/${repetitions} ${name}: p95 ${round(summarize(result.latencies).p95)} ms`);
        const list = raw.get(name) ?? [];
        list.push({ run: result, ideals: ideal, idealMakespan: idealMakespan(seed, specs) });
        raw.set(name, list);
      }
    }
    const idealSummary = medianSummary(ideals.map(summarize));
    const systems: SystemResult[] = [...raw.entries()].map(([system, runs]) => {
      const per = runs.map(({ run, ideals: ideal, idealMakespan: im }) => {
        const lat = summarize(run.latencies);
        const idl = summarize(ideal);
        const blogRatios = run.latencies.map((l, i) => l / ideal[i]!);
        return {
          lat,
          makespan: run.makespanMs,
          vs: {
            p50: ratio(lat.p50, idl.p50),
            p95: ratio(lat.p95, idl.p95),
            max: ratio(lat.max, idl.max),
            makespan: ratio(run.makespanMs, im),
          },
          perBlog: summarize(blogRatios),
        };
      });
      return {
        system,
        runs: runs.length,
        latencyMs: medianSummary(per.map((p) => p.lat)),
        makespanMs: median(per.map((p) => p.makespan)),
        vsIdeal: {
          p50: median(per.map((p) => p.vs.p50)),
          p95: median(per.map((p) => p.vs.p95)),
          max: median(per.map((p) => p.vs.max)),
          makespan: median(per.map((p) => p.vs.makespan)),
        },
        perBlogRatio: { p50: median(per.map((p) => p.perBlog.p50)), p95: median(per.map((p) => p.perBlog.p95)) },
        makespansMs: per.map((p) => Math.round(p.makespan)),
      };
    });
    const p95 = (name: SystemName) => systems.find((s) => s.system === name)?.latencyMs.p95 ?? NaN;
    return {
      blogs: BLOGS,
      stores: STORES,
      arrivalWindowMs: WINDOW_MS,
      pollMs: POLL_MS,
      stageMs: STAGE_MS,
      limits: LIMITS,
      rateLimitWindowMs: 60_000 / SCALE,
      idealMs: idealSummary,
      idealMakespanMs: median(makespanIdeals),
      rateLimitBoundMs: median(bounds),
      systems,
      inkwellP95AdvantageOverLifecycle: ratio(p95('lifecycle worker'), p95('inkwell')),
    };
  });
}
