/**
 * Token budget as the binding limit (issue #19), on the path users run: `npm start` as its own process with
 * `INKWELL_OPENAI_TPM`, real PostgreSQL, NATS and (with REDIS_URL) Redis, the real OpenAI adapter calling the fake
 * OpenAI (test/support/fake.openai.ts in bench/lib/fakes.child.ts, a process of its own) that enforces the same
 * tokens per 60 s with its own count, the way OpenAI counts: a request counts when it arrives, by its prompt and
 * `max_completion_tokens`, then by the `usage` it reports; one that does not fit is answered 429. It cuts answers at
 * `max_completion_tokens` (`finish_reason: length`, a paid retry). Replicate and Wix answer fast, unlimited.
 *
 * Blogs are created with an idea over JetStream, each with one article to write: articles of OpenAI's size (1,100
 * completion tokens at the median, log-normal spread σ = SPREAD per answer) after `answerMs`. A closed loop keeps
 * `IN_FLIGHT` blogs over `STORES` stores going, far more than the budget serves. Measured from the fake's records:
 * per full 60 s window after a warm-up, the tokens it counted (as finally reported) ÷ the budget; its 429s; the most it
 * counted in any window ÷ the budget (≤ 1.1 allowed); answers cut off at the limit; and per blog that ended DONE, the
 * `usage` of its DONE event against what the fake reported for that blog's requests. Beside them, where the rest of
 * the budget goes: the answer time ÷ window (s) and the fake's up-front count ÷ a call's final cost (k), which cap any
 * client at 1 ÷ (1 − s + s·k): a call in flight holds its up-front count.
 *
 * Real 60 s windows (the contract's; the runtime has no other). Quick mode: 4 s answers, one measured window. Full:
 * 4 s and 15 s answers, three windows each. Alone: `npx tsx bench/tokens.bench.ts [--quick] [--answer-ms 15000]`
 * (needs dist/: `npm run build`); `npm run bench` runs it too.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { ensureDist } from '../scripts/dist.fresh.mjs';
import { LIMITS_ABOVE_LOAD, publishCommand, withRealPath } from './lib/realpath.run';
import { round } from './lib/stats';
import { followEvents, type BlogEvent } from './realpath.bench';

const WINDOW_MS = 60_000;
const WARMUP_MS = 30_000;
const TPM = 60_000;
const STORES = 40;
const IN_FLIGHT = 80;
const ARTICLE_TOKENS = 1_100;
export const SPREAD = Number(process.env.BENCH_TOKENS_SPREAD ?? 0.1);
/** A Redis database of the benchmark's own, so its `inkwell:*` keys meet nobody else's. */
const REDIS_DB = 13;

type Call = {
  blog: string | null;
  at: number;
  endedAt: number | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  finishReason: string | null;
  maxCompletion: number | null;
};
type OpenAiLog = {
  tokenLimit: { rejected: number; windowMax: number; log: Array<{ at: number; tokens: number }> };
  calls: Call[];
};
type DoneEvent = BlogEvent & { usage?: { inputTokens: number; outputTokens: number } };

/** One answer time's figures. */
export interface TokensCase {
  answerMs: number;
  windows: number;
  blogsDone: number;
  blogsFailed: number;
  calls: number;
  rejected429: number;
  /** Tokens the provider counted per full window ÷ the budget, and their mean. */
  usedPerWindow: number[];
  utilisation: number;
  /** The most the provider counted in any window ÷ the budget (≤ 1.1 allowed). */
  windowMaxOverBudget: number;
  /** Answers cut off at `max_completion_tokens` ÷ answers; and how many. */
  truncationRate: number;
  truncated: number;
  /** Blogs DONE whose event `usage` differs from what the fake reported for them (0 expected), of `blogsDone`. */
  spendMismatches: number;
  /** Tokens the DONE events reported in all, and what the fake reported for those blogs. */
  spendFromEvents: number;
  spendAtProvider: number;
  /** Mean answer time ÷ window (s); up-front count ÷ final cost (k); the cap 1 ÷ (1 − s + s·k) they leave. */
  answerShareOfWindow: number;
  upFrontOverCost: number;
  theoreticalCap: number;
  /** Mean `max_completion_tokens` asked in the measured windows, and the answers' mean completion tokens. */
  meanMaxCompletion: number;
  meanCompletion: number;
  /** Load average (1 min) at the start and the end. */
  load: [number, number];
}

export interface TokensResult {
  scenario: string;
  tpm: number;
  windowMs: number;
  stores: number;
  inFlight: number;
  articleTokens: number;
  spread: number;
  store: 'memory' | 'redis';
  cases: TokensCase[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Deletes the runtime's keys in the benchmark's Redis database, so a case never starts with the last one's. */
async function clearRedis(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await redis.keys('inkwell:*');
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

async function runCase(
  answerMs: number,
  windows: number,
  redisUrl: string | undefined,
  say: (line: string) => void,
): Promise<TokensCase> {
  if (redisUrl) await clearRedis(redisUrl);
  const fakesArgs = [
    ['--article-ms', answerMs],
    ['--image-ms', 50],
    ['--wix-ms', 2],
    ['--openai-tpm', TPM],
    ['--article-tokens', ARTICLE_TOKENS],
    ['--article-spread', SPREAD],
  ].flatMap(([k, v]) => [String(k), String(v)]);
  const env = {
    INKWELL_OPENAI_TPM: String(TPM),
    // Tokens are the binding limit: the other limits far above what the budget lets through.
    ...LIMITS_ABOVE_LOAD,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
  return withRealPath('tk', fakesArgs, env, async ({ urls, nc, prefix, tag }) => {
    const loadStart = loadavg()[0]!;
    const js = jetstream(nc);
    const done = new Map<string, DoneEvent>();
    let failed = 0;
    const follow = followEvents(nc, prefix, (e: DoneEvent) => {
      if (e.status === 'DONE') done.set(e.blogId, e);
      if (e.status === 'FAILED') failed++;
    });
    const started = Date.now();
    const end = started + WARMUP_MS + windows * WINDOW_MS;
    let next = 0;
    // Closed loop: a blog DONE makes room for the next one, until the end.
    const worker = async () => {
      while (Date.now() < end) {
        const k = next++;
        const blogId = `tk-${tag}-${k}`;
        const body = {
          blogId,
          instanceId: `store-${k % STORES}`,
          idea: { title: `Green tea ${k} [${blogId}]`, summary: 'Temperature, time and leaves.' },
        };
        const finished = follow.waitDone(blogId);
        await publishCommand(js, `${prefix}.create`, body, `create-${blogId}`);
        await Promise.race([finished, new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())))]);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    // Calls that arrived before the end are answered (settled at their `usage`) and their blogs' events are in.
    await new Promise((r) => setTimeout(r, answerMs + 2_000));
    follow.stop();
    const { tokenLimit, calls } = (await (await fetch(`${urls.control}/openai`)).json()) as OpenAiLog;

    const usedPerWindow: number[] = [];
    for (let w = 0; w < windows; w++) {
      const from = started + WARMUP_MS + w * WINDOW_MS;
      const sum = tokenLimit.log
        .filter((e) => e.at >= from && e.at < from + WINDOW_MS)
        .reduce((n, e) => n + e.tokens, 0);
      usedPerWindow.push(round(sum / TPM, 3));
    }
    const answered = calls.filter((c) => c.usage && c.endedAt !== null);
    const measured = answered.filter((c) => c.at >= started + WARMUP_MS);
    const truncated = answered.filter((c) => c.finishReason === 'length').length;
    // Spend: per blog DONE, its event's usage against the fake's usage of every request tagged with it.
    const atProvider = new Map<string, number>();
    for (const c of calls) {
      if (c.blog && c.usage) atProvider.set(c.blog, (atProvider.get(c.blog) ?? 0) + c.usage.total_tokens);
    }
    let spendMismatches = 0;
    let spendFromEvents = 0;
    let spendAtProvider = 0;
    for (const [blogId, e] of done) {
      const fromEvent = (e.usage?.inputTokens ?? NaN) + (e.usage?.outputTokens ?? NaN);
      const provider = atProvider.get(blogId) ?? 0;
      spendFromEvents += fromEvent;
      spendAtProvider += provider;
      if (fromEvent !== provider) spendMismatches++;
    }
    // s and k of the calls in the measured windows (the first calls ask for the ceiling, before anything is learned).
    const s = mean(measured.map((c) => c.endedAt! - c.at)) / WINDOW_MS;
    const upFront = measured.map((c) => c.usage!.prompt_tokens + (c.maxCompletion ?? 0));
    const k = mean(upFront) / mean(measured.map((c) => c.usage!.total_tokens));
    const result: TokensCase = {
      answerMs,
      windows,
      blogsDone: done.size,
      blogsFailed: failed,
      calls: calls.length,
      rejected429: tokenLimit.rejected,
      usedPerWindow,
      utilisation: round(mean(usedPerWindow), 3),
      windowMaxOverBudget: round(tokenLimit.windowMax / TPM, 3),
      truncationRate: round(truncated / Math.max(1, answered.length), 4),
      truncated,
      spendMismatches,
      spendFromEvents,
      spendAtProvider,
      answerShareOfWindow: round(s, 3),
      upFrontOverCost: round(k, 3),
      theoreticalCap: round(1 / (1 - s + s * k), 3),
      meanMaxCompletion: round(mean(measured.map((c) => c.maxCompletion ?? 0))),
      meanCompletion: round(mean(measured.map((c) => c.usage!.completion_tokens))),
      load: [round(loadStart, 2), round(loadavg()[0]!, 2)],
    };
    say(
      `  tokens, ${answerMs} ms answers: utilisation ${result.utilisation} (${usedPerWindow.join(', ')}), window max ` +
        `${result.windowMaxOverBudget}, ${result.rejected429} 429s, ${truncated} cut off of ${answered.length}; ` +
        `${done.size} blogs DONE, ${failed} FAILED, ${spendMismatches} spend mismatches; s ${result.answerShareOfWindow}, ` +
        `k ${result.upFrontOverCost}, cap ${result.theoreticalCap}; load ${result.load.join(' → ')}`,
    );
    return result;
  });
}

export async function runTokens(
  quick: boolean,
  say: (line: string) => void,
  answers = quick ? [4_000] : [4_000, 15_000],
): Promise<TokensResult> {
  const base = process.env.REDIS_URL;
  const redisUrl = base ? `${base.replace(/\/\d*$/, '')}/${REDIS_DB}` : undefined;
  const windows = quick ? 1 : 3;
  say(
    `tokens: npm start, budget ${TPM} per ${WINDOW_MS / 1000} s, ${IN_FLIGHT} blogs in flight over ${STORES} stores, ` +
      `${windows} window(s) after ${WARMUP_MS / 1000} s (${redisUrl ? 'Redis' : 'memory'})`,
  );
  const cases: TokensCase[] = [];
  for (const answerMs of answers) cases.push(await runCase(answerMs, windows, redisUrl, say));
  return {
    scenario: 'npm start against the fake OpenAI enforcing the budget (real path)',
    tpm: TPM,
    windowMs: WINDOW_MS,
    stores: STORES,
    inFlight: IN_FLIGHT,
    articleTokens: ARTICLE_TOKENS,
    spread: SPREAD,
    store: redisUrl ? 'redis' : 'memory',
    cases,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, 'answer-ms': { type: 'string', multiple: true } },
  });
  const answers = values['answer-ms']?.map(Number);
  ensureDist({ log: (line: string) => console.log(line) });
  const result = await runTokens(values.quick, (line) => console.log(line), answers);
  console.log(JSON.stringify(result));
}
