/**
 * Scenario 5, the real path (issue #15): what a new user runs. `npm start` as its own process on a fresh PostgreSQL
 * database and the local nats-server; the real OpenAI, Replicate and Wix adapters calling local HTTP fakes that
 * answer after fixed times (bench/lib/fakes.child.ts, a process of their own); blogs created with an idea over
 * JetStream; latency per blog measured from outside, from the create's PubAck to the DONE event on NATS.
 *
 * Closed loop: at each concurrency level N, N blogs are in flight at all times until the level's count is done.
 * Beside each level, in the same run, the floor: a bare client process (bench/lib/floor.child.ts) making the same
 * HTTP calls to the same fakes at the same concurrency. Where the time goes: per stage from the events' `at`, the
 * providers' own times from the fakes' log, and how late each event reached the subscriber after its `at`.
 * Correctness is checked on the way: one article, one prediction and one publish per blog as the fakes counted
 * them, and per blog the events' seq runs 1..n in order.
 */
import { performance } from 'node:perf_hooks';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { startChild } from './lib/realpath.procs';
import { LIMITS_ABOVE_LOAD, NATS_URL, publishCommand, withRealPath } from './lib/realpath.run';
import { ratio, round, summarize, type Summary } from './lib/stats';

const STORES = 20;
const LEVELS = [10, 60, 200];
const STAGE = { articleMs: 300, imageMs: 120, wixMs: 5 };
export { NATS_URL, runtimeEnv } from './lib/realpath.run';
const LEVEL_TIMEOUT_MS = 180_000;

export interface BlogEvent {
  blogId: string;
  status: string;
  seq: number;
  at: string;
}

/** One concurrency level's figures. */
export interface RealPathLevel {
  concurrency: number;
  blogs: number;
  inkwellMs: Summary;
  floorMs: Summary;
  /** Inkwell ÷ floor at p50, p95 and max. */
  vsFloor: { p50: number; p95: number; max: number };
  /** p50 per stage from the events' `at` (the PubAck → PENDING one from the client's clock). */
  stagesP50Ms: Record<string, number>;
  /** p50 of each provider's own request time, from the fakes' log. */
  providerP50Ms: { article: number; image: number; wixCall: number };
  /** How long after its `at` (set at the transition, before the commit) each event reached the subscriber. */
  eventDelayMs: Summary;
  /**
   * How long after its outbox row was written (the row's `created_at`: `clock_timestamp()` in the committing
   * statement, read from the database after the level) each event reached a subscriber in a process of its own
   * (bench/lib/subscriber.child.ts): at least its delay after the commit (only the commit's WAL flush and answer
   * come between), so a conservative figure for the target "within 20 ms of its commit".
   */
  eventDelayAfterTxMs: Summary;
  /** The same, for the load generator's own subscriber (in the process that sends the commands and waits for DONE). */
  eventDelayAfterTxInGeneratorMs: Summary;
  /**
   * From the runtime's own histogram `inkwell_event_publish_seconds` (commit → PubAck of events sent right after
   * their commit): how many, and the bucket bound under which 95 % fell. A second figure beside the subscriber's.
   */
  commitToAck: { events: number; p95UnderMs: number };
  /** What the fakes received during the level: articles, prediction creates, Wix publishes. */
  calls: { articles: number; predictions: number; publishes: number };
  /** Blogs whose events did not run 1..n in order (0 expected). */
  orderProblems: number;
}

export interface RealPathResult {
  stores: number;
  stageTimes: typeof STAGE;
  levels: RealPathLevel[];
}

type Logged = { service: string; method: string; path: string; at: number; endedAt: number | null };

/** Events per blog, and waiters for DONE. */
export function followEvents(nc: NatsConnection, prefix: string, onEvent?: (e: BlogEvent) => void) {
  const events = new Map<string, { e: BlogEvent; receivedAt: number }[]>();
  const done = new Map<string, () => void>();
  const sub = nc.subscribe(`${prefix}.events.>`, {
    callback: (_err, msg) => {
      const receivedAt = Date.now();
      const e = msg.json<BlogEvent>();
      const list = events.get(e.blogId) ?? [];
      list.push({ e, receivedAt });
      events.set(e.blogId, list);
      onEvent?.(e);
      if (e.status === 'DONE') done.get(e.blogId)?.();
      if (e.status === 'FAILED') console.error(`  real path: ${e.blogId} FAILED ${JSON.stringify(e)}`);
    },
  });
  const waitDone = (blogId: string) =>
    new Promise<void>((resolve) => {
      if (events.get(blogId)?.some((x) => x.e.status === 'DONE')) resolve();
      else done.set(blogId, resolve);
    });
  return { events, waitDone, stop: () => sub.unsubscribe() };
}

const p50 = (xs: number[]) => summarize(xs).p50;

/**
 * What the events say: p50 of the time in each status (from one status's `at` to the next one's; the first from the
 * client's `ackAt`), how late events reached the subscriber after their `at`, and order problems: blogs whose events
 * did not run 1..n, a seq carrying two statuses, an event arriving after a later one of its blog.
 */
export function readEvents(
  events: Map<string, { e: BlogEvent; receivedAt: number }[]>,
  ackAt: Map<string, number>,
): { stagesP50Ms: Record<string, number>; eventDelayMs: Summary; orderProblems: number } {
  const stages: Record<string, number[]> = {};
  const delays: number[] = [];
  let orderProblems = 0;
  for (const [blogId, list] of events) {
    const firstSeen = new Map<number, BlogEvent>();
    let highest = 0;
    for (const { e, receivedAt } of list) {
      delays.push(receivedAt - Date.parse(e.at));
      const seen = firstSeen.get(e.seq);
      if (seen && seen.status !== e.status) orderProblems++;
      if (e.seq < highest) orderProblems++; // arrived after a later event of its blog (a late duplicate, say)
      highest = Math.max(highest, e.seq);
      firstSeen.set(e.seq, e);
    }
    const ordered = [...firstSeen.values()].sort((a, b) => a.seq - b.seq);
    if (ordered.some((e, i) => e.seq !== i + 1)) orderProblems++;
    const first = ordered[0];
    if (first) (stages['ack → PENDING'] ??= []).push(Date.parse(first.at) - (ackAt.get(blogId) ?? NaN));
    for (let i = 0; i + 1 < ordered.length; i++) {
      (stages[ordered[i]!.status] ??= []).push(Date.parse(ordered[i + 1]!.at) - Date.parse(ordered[i]!.at));
    }
  }
  return {
    stagesP50Ms: Object.fromEntries(Object.entries(stages).map(([k, xs]) => [k, round(p50(xs), 1)])),
    eventDelayMs: summarize(delays),
    orderProblems,
  };
}

/** Cumulative bucket counts of `inkwell_event_publish_seconds` on the runtime's /metrics, by upper bound in ms. */
async function publishBuckets(metricsUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(/^inkwell_event_publish_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]) * 1000, Number(m[2]));
  }
  return buckets;
}

/** Count and p95 bucket bound of what was observed between two scrapes. */
function bucketP95(before: Map<number, number>, after: Map<number, number>): { events: number; p95UnderMs: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const count = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const events = count(Infinity);
  const under = bounds.find((le) => count(le) >= 0.95 * events) ?? Infinity;
  return { events, p95UnderMs: under };
}

/**
 * Per event, how long after its outbox row was written (the row's `created_at`, stamped by the committing statement
 * just before its commit) each subscriber received it (its first receipt, from `receivedAt`), for the blogs whose
 * ids start with `blogIdPrefix`.
 */
async function delaysAfterTx(
  databaseUrl: string,
  blogIdPrefix: string,
  subscribers: Array<(blogId: string, seq: number) => number | undefined>,
): Promise<Summary[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ blog_id: string; seq: number; t: number }>(
      `select blog_id, seq, extract(epoch from created_at) * 1000 as t from outbox where blog_id like $1`,
      [`${blogIdPrefix}%`],
    );
    return subscribers.map((receivedAt) => {
      const delays: number[] = [];
      for (const row of rows) {
        const at = receivedAt(row.blog_id, row.seq);
        if (at !== undefined) delays.push(at - Number(row.t));
      }
      return summarize(delays);
    });
  } finally {
    await client.end();
  }
}

async function runLevel(
  n: number,
  blogs: number,
  ctx: {
    nc: NatsConnection;
    prefix: string;
    fakes: Record<string, string>;
    tag: string;
    metricsUrl: string;
    databaseUrl: string;
  },
): Promise<RealPathLevel> {
  // The floor first, while the runtime idles.
  const floorOut = await startChild(
    ['bench/lib/floor.child.ts', '--concurrency', String(n), '--blogs', String(blogs), '--stores', String(STORES)],
    { FAKE_OPENAI: ctx.fakes.openai!, FAKE_REPLICATE: ctx.fakes.replicate!, FAKE_WIX: ctx.fakes.wix! },
  ).result<{ floor: number[] }>('floor');
  await fetch(`${ctx.fakes.control}/reset`, { method: 'POST' });

  const js = jetstream(ctx.nc);
  const subscriber = startChild(['bench/lib/subscriber.child.ts', '--subject', `${ctx.prefix}.events.>`], {
    NATS_URL,
  });
  await subscriber.result('ready');
  const bucketsBefore = await publishBuckets(ctx.metricsUrl);
  const follow = followEvents(ctx.nc, ctx.prefix);
  const ackAt = new Map<string, number>();
  const idPrefix = `rp-${ctx.tag}-${n}-`;
  const latencies: number[] = [];
  let next = 0;
  const deadline = Date.now() + LEVEL_TIMEOUT_MS;
  const worker = async () => {
    while (next < blogs) {
      const k = next++;
      const blogId = `${idPrefix}${k}`;
      const body = {
        blogId,
        instanceId: `store-${k % STORES}`,
        idea: { title: `Real path post ${k}`, summary: 'Why.' },
      };
      const finished = follow.waitDone(blogId);
      await publishCommand(js, `${ctx.prefix}.create`, body, `create-${blogId}`);
      const t0 = performance.now();
      ackAt.set(blogId, Date.now());
      await Promise.race([
        finished,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`${blogId} not DONE in time`)), deadline - Date.now()).unref(),
        ),
      ]);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  await new Promise((r) => setTimeout(r, 200)); // late duplicates, if any, still count in the order check
  follow.stop();

  const { stagesP50Ms, eventDelayMs, orderProblems } = readEvents(follow.events, ackAt);
  subscriber.proc.kill('SIGUSR2');
  const { received } = await subscriber.result<{ received: Array<[string, number, number]> }>('received');
  await subscriber.stop();
  const apart = new Map(received.map(([blogId, seq, at]) => [`${blogId}:${seq}`, at]));
  const [eventDelayAfterTxMs, eventDelayAfterTxInGeneratorMs] = await delaysAfterTx(ctx.databaseUrl, idPrefix, [
    (blogId, seq) => apart.get(`${blogId}:${seq}`),
    (blogId, seq) => follow.events.get(blogId)?.find((x) => x.e.seq === seq)?.receivedAt,
  ]);
  const commitToAck = bucketP95(bucketsBefore, await publishBuckets(ctx.metricsUrl));
  const log = (await (await fetch(`${ctx.fakes.control}/requests`)).json()) as Logged[];
  const took = (pred: (r: Logged) => boolean) =>
    p50(log.filter((r) => pred(r) && r.endedAt !== null).map((r) => r.endedAt! - r.at));
  const isArticle = (r: Logged) => r.service === 'openai' && r.path.endsWith('/chat/completions');
  const isPrediction = (r: Logged) =>
    r.service === 'replicate' && r.method === 'POST' && r.path.endsWith('/predictions');
  const isPublish = (r: Logged) => r.service === 'wix' && /\/draft-posts\/[^/]+\/publish$/.test(r.path);
  const inkwellMs = summarize(latencies);
  const floorMs = summarize(floorOut.floor);
  return {
    concurrency: n,
    blogs,
    inkwellMs,
    floorMs,
    vsFloor: {
      p50: ratio(inkwellMs.p50, floorMs.p50),
      p95: ratio(inkwellMs.p95, floorMs.p95),
      max: ratio(inkwellMs.max, floorMs.max),
    },
    stagesP50Ms,
    providerP50Ms: {
      article: round(took(isArticle), 1),
      image: round(took(isPrediction), 1),
      wixCall: round(
        took((r) => r.service === 'wix' && r.path !== '/oauth2/token'),
        1,
      ),
    },
    eventDelayMs,
    eventDelayAfterTxMs: eventDelayAfterTxMs!,
    eventDelayAfterTxInGeneratorMs: eventDelayAfterTxInGeneratorMs!,
    commitToAck,
    calls: {
      articles: log.filter(isArticle).length,
      predictions: log.filter(isPrediction).length,
      publishes: log.filter(isPublish).length,
    },
    orderProblems,
  };
}

export async function runRealPath(quick: boolean, say: (line: string) => void): Promise<RealPathResult> {
  const fakesArgs = [
    '--article-ms',
    String(STAGE.articleMs),
    '--image-ms',
    String(STAGE.imageMs),
    '--wix-ms',
    String(STAGE.wixMs),
  ];
  // Limits far above the load: this scenario measures the path, not the limits.
  return withRealPath('rp', fakesArgs, LIMITS_ABOVE_LOAD, async ({ urls, runtime, nc, prefix, tag, databaseUrl }) => {
    // Warm-up (unmeasured): the runtime's and the client's code paths and connections.
    const metricsUrl = `http://127.0.0.1:${runtime.port}/metrics`;
    const ctx = { nc, prefix, fakes: urls, metricsUrl, databaseUrl };
    await runLevel(10, 20, { ...ctx, tag: `${tag}w` });
    const levels: RealPathLevel[] = [];
    for (const n of LEVELS) {
      const level = await runLevel(n, quick ? n : Math.max(4 * n, 120), { ...ctx, tag });
      say(
        `  real path ${n} concurrent: p95 ${round(level.inkwellMs.p95)} ms, floor ${round(level.floorMs.p95)} ms ` +
          `(${round(level.vsFloor.p95, 2)}x); event delay p95 ${round(level.eventDelayMs.p95, 1)} ms ` +
          `after its \`at\`, ${round(level.eventDelayAfterTxMs.p95, 1)} ms after its outbox row was written ` +
          `(${round(level.eventDelayAfterTxInGeneratorMs.p95, 1)} ms at the load generator's subscriber)`,
      );
      levels.push(level);
    }
    return { stores: STORES, stageTimes: STAGE, levels };
  });
}
