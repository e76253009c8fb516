/**
 * Scenario 6, the old system's workload on the real path (issue #15): the latency-bound scenario's 200 blogs from 20
 * stores arriving over 10 s (half topics with the owner's pick after a short delay), each with its own stage times
 * (the old times ÷ 100, ±50 % jitter), now answered by the HTTP fakes (bench/lib/fakes.child.ts --workload) and
 * reached through the real adapters: Inkwell as `npm start` with commands over JetStream, and the polling lifecycle
 * worker with the same adapters (composeLeaselessProviders: it holds no store leases) against the same fakes.
 * Latency per blog: from when its create is sent to its DONE (Inkwell: the event on NATS; the worker: its committed
 * status). The ideal is the sum of the blog's stage times plus its pick. Limits: the concurrency limits of the
 * latency-bound scenario; their per-minute rates are real minutes here (the runtime has no scaled window), which
 * this workload stays under.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../src/config';
import { openPostgres } from '../src/db/pg.client';
import { createLogger } from '../src/logger';
import { composeLeaselessProviders } from '../src/app/compose';
import { startLifecycleWorker } from './baselines/lifecycle.worker';
import { drive, POLL_MS, runLegacy, type Run } from './latency.bench';
import { withFreshDatabase } from './lib/database';
import { startChild, startNpm } from './lib/realpath.procs';
import { publishCommand } from './lib/realpath.run';
import { LIMITS, selectionDelay } from './lib/sim';
import { median, medianSummary, ratio, round, summarize, type Summary } from './lib/stats';
import { idealOf, makeWorkload, type BlogSpec } from './lib/workload';
import { followEvents, NATS_URL, readEvents, runtimeEnv } from './realpath.bench';

const STORES = 20;

/** The latency-bound scenario's concurrency limits, as the runtime's and the providers' configuration. */
const LIMIT_ENV = {
  INKWELL_OPENAI_CONCURRENCY: String(LIMITS.openai.concurrency),
  INKWELL_OPENAI_RPM: String(LIMITS.openai.rpm),
  INKWELL_REPLICATE_CONCURRENCY: String(LIMITS.replicate.concurrency),
  INKWELL_REPLICATE_RPM: String(LIMITS.replicate.rpm),
  INKWELL_WIX_CONCURRENCY: String(LIMITS.wix.concurrency),
  INKWELL_WIX_RPM: String(LIMITS.wix.rpm),
};

export interface RealPathLegacyResult {
  blogs: number;
  stores: number;
  arrivalWindowMs: number;
  runs: number;
  idealMs: Summary;
  inkwellMs: Summary;
  lifecycleMs: Summary;
  /** Inkwell ÷ ideal at each quantile (target p95 ≤ 1.1). */
  inkwellVsIdeal: { p50: number; p95: number; max: number };
  /** Lifecycle p95 ÷ Inkwell p95 (target ≥ 2). */
  lifecycleP95OverInkwell: number;
  /** Inkwell, last repetition: p50 time in each status from the events, their delay, order problems (0). */
  inkwellStagesP50Ms: Record<string, number>;
  inkwellEventDelayMs: Summary;
  orderProblems: number;
}

type InkwellRun = Run & { stagesP50Ms: Record<string, number>; eventDelayMs: Summary; orderProblems: number };

async function runInkwell(seed: string, specs: BlogSpec[], urls: Record<string, string>): Promise<InkwellRun> {
  const tag = Math.random().toString(36).slice(2, 8);
  const prefix = `rpl_${tag}`;
  const streams = { commands: `RPL_${tag}_CMD`, events: `RPL_${tag}_EVT` };
  const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-realpath-legacy-'));
  const nc = await connect({ servers: NATS_URL });
  const js = jetstream(nc);
  const finished = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  try {
    return await withFreshDatabase(async (db) => {
      const runtime = await startNpm({ ...runtimeEnv(urls, db.url, dataDir, prefix, streams), ...LIMIT_ENV });
      const instanceOf = new Map(specs.map((s) => [s.blogId, s.instanceId]));
      const follow = followEvents(nc, prefix, (e) => {
        if (e.status === 'DONE') finished.set(e.blogId, performance.now());
        if (e.status !== 'AWAITING_SELECTION') return;
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            const body = { blogId: e.blogId, instanceId: instanceOf.get(e.blogId), ideaIndex: 0 };
            publishCommand(js, `${prefix}.select`, body, `select-${e.blogId}`).catch((err: unknown) =>
              console.error(err),
            );
          },
          selectionDelay(seed, e.blogId),
        );
        timers.add(timer);
      });
      const sentAt = new Map<string, number>();
      try {
        const run = await drive(
          specs,
          (spec) => {
            sentAt.set(spec.blogId, Date.now());
            const body =
              spec.kind === 'topic'
                ? { blogId: spec.blogId, instanceId: spec.instanceId, topic: `Brewing coffee [${spec.blogId}]` }
                : {
                    blogId: spec.blogId,
                    instanceId: spec.instanceId,
                    idea: { title: `Cold brew at home [${spec.blogId}]`, summary: 'A slow method.' },
                  };
            return publishCommand(js, `${prefix}.create`, body, `create-${spec.blogId}`);
          },
          finished,
        );
        return { ...run, ...readEvents(follow.events, sentAt) };
      } finally {
        follow.stop();
        await runtime.stop();
      }
    });
  } finally {
    timers.forEach(clearTimeout);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(streams.commands).catch(() => undefined);
    await jsm.streams.delete(streams.events).catch(() => undefined);
    await nc.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The lifecycle worker with the real adapters (as `npm start` would build them) against the same fakes. */
async function runWorker(seed: string, specs: BlogSpec[], urls: Record<string, string>): Promise<Run> {
  return withFreshDatabase(async (db) => {
    const env = runtimeEnv(urls, db.url, '/tmp/inkwell-bench-unused', 'unused', { commands: 'x', events: 'y' });
    const config = loadConfig({ ...env, ...LIMIT_ENV, INKWELL_LOG_LEVEL: 'error' });
    const log = createLogger('error', 'bench');
    const database = openPostgres(db.url, () => undefined);
    await database.migrate(); // the adapters keep their provider references in Inkwell's table
    try {
      return await runLegacy(
        db.url,
        seed,
        specs,
        startLifecycleWorker,
        composeLeaselessProviders(config, log, database.db),
      );
    } finally {
      await database.close();
    }
  });
}

export async function runRealPathLegacy(quick: boolean, say: (line: string) => void): Promise<RealPathLegacyResult> {
  const [blogs, windowMs, repetitions] = quick ? [60, 3_000, 1] : [200, 10_000, 2];
  const fakes = startChild(['bench/lib/fakes.child.ts', '--workload'], {});
  try {
    const urls = await fakes.result<Record<string, string>>('fakes');
    const per: { ideal: Summary; inkwell: Summary; lifecycle: Summary }[] = [];
    let last: InkwellRun | undefined;
    for (let r = 0; r < repetitions; r++) {
      const seed = `rpl${r}`;
      const specs = makeWorkload(seed, blogs, STORES, windowMs);
      const inkwell = await runInkwell(seed, specs, urls);
      last = inkwell;
      const lifecycle = await runWorker(seed, specs, urls);
      const row = {
        ideal: summarize(specs.map((s) => idealOf(seed, s))),
        inkwell: summarize(inkwell.latencies),
        lifecycle: summarize(lifecycle.latencies),
      };
      say(
        `  real path, old workload rep ${r + 1}/${repetitions}: ideal p95 ${round(row.ideal.p95)} ms, inkwell ` +
          `${round(row.inkwell.p95)} ms, lifecycle worker ${round(row.lifecycle.p95)} ms (poll ${POLL_MS} ms); ` +
          `inkwell per status p50 ${JSON.stringify(inkwell.stagesP50Ms)}`,
      );
      per.push(row);
    }
    const idealMs = medianSummary(per.map((p) => p.ideal));
    const inkwellMs = medianSummary(per.map((p) => p.inkwell));
    const lifecycleMs = medianSummary(per.map((p) => p.lifecycle));
    return {
      blogs,
      stores: STORES,
      arrivalWindowMs: windowMs,
      runs: repetitions,
      idealMs,
      inkwellMs,
      lifecycleMs,
      inkwellVsIdeal: {
        p50: median(per.map((p) => ratio(p.inkwell.p50, p.ideal.p50))),
        p95: median(per.map((p) => ratio(p.inkwell.p95, p.ideal.p95))),
        max: median(per.map((p) => ratio(p.inkwell.max, p.ideal.max))),
      },
      lifecycleP95OverInkwell: median(per.map((p) => ratio(p.lifecycle.p95, p.inkwell.p95))),
      inkwellStagesP50Ms: last!.stagesP50Ms,
      inkwellEventDelayMs: last!.eventDelayMs,
      orderProblems: last!.orderProblems,
    };
  } finally {
    await fakes.stop();
  }
}
