/**
 * Token budget as the binding limit (issue #19): OpenAI calls from many blogs at once through the real OpenAI adapter
 * (openai.writer.ts, the `openai` SDK over HTTP) and the token window, against the fake OpenAI
 * (test/support/fake.openai.ts) enforcing the same tokens-per-window with its own count, the way OpenAI counts: a
 * request counts when it arrives, by its prompt and `max_completion_tokens`, then by the `usage` it reports.
 * Answers are articles of OpenAI's size (about 1,100 completion tokens) after `ANSWER_MS`.
 *
 * Reports, per full window after the first (which starts empty), the tokens the provider counted ÷ the budget
 * (utilisation), the most it counted in any window ÷ the budget, and the 429s it answered; and, to say where the rest
 * of the budget goes, the mean answer time against the window and the provider's up-front count of a call against
 * what it finally cost. Real minutes (60 s windows, 4 s answers): shortened windows would shrink the answers but not
 * the event loop's delays, which then decide more than the limits do. With REDIS_URL the window is in Redis, as with
 * `npm start` and REDIS_URL; BENCH_TOKENS_ANSWER_MS sets the answer time. Alone: `npx tsx bench/tokens.bench.ts
 * [--quick]`; `npm run bench` runs it too.
 */
import { createOpenAiWriter } from '../src/providers/openai.writer';
import { createTokenWindow } from '../src/providers/token.window';
import { startFakeOpenAi } from '../test/support/fake.openai';
import { round } from './lib/stats';

const WINDOW_MS = 60_000;
const ANSWER_MS = Number(process.env.BENCH_TOKENS_ANSWER_MS ?? 4_000);
const KEY = 'sk-bench-0123456789';
const ARTICLE = JSON.stringify({
  title: 'Green tea, brewed right',
  excerpt: 'Temperature, time and leaves: what changes the cup.',
  body_markdown: `## Why it matters\n\n${'Water just off the boil scorches green tea; let it rest a minute. '.repeat(66)}`,
});

export interface TokensResult {
  scenario: string;
  tpm: number;
  windowMs: number;
  answerMs: number;
  store: 'memory' | 'redis';
  callers: number;
  calls: number;
  rejected429: number;
  failures: number;
  /** Tokens the provider counted per full window ÷ the budget. */
  usedPerWindow: number[];
  utilisation: number;
  /** The most the provider counted in any window ÷ the budget (≤ 1.1 allowed). */
  windowMaxOverBudget: number;
  /** Where the rest goes: mean answer time ÷ window; the provider's up-front count ÷ what a call cost. */
  answerShareOfWindow: number;
  upFrontOverCost: number;
}

export async function runTokens(quick: boolean, say: (line: string) => void): Promise<TokensResult> {
  const tpm = 60_000;
  const windows = quick ? 3 : 5;
  const callers = 64;
  const fake = await startFakeOpenAi({ apiKey: KEY, tpm, windowMs: WINDOW_MS });
  fake.script(() => ({ delayMs: ANSWER_MS, content: ARTICLE }));
  const redisUrl = process.env.REDIS_URL;
  const prefix = `bench-tokens-${process.pid}-${Date.now()}`;
  const tokens = createTokenWindow({
    name: 'openai',
    tpm,
    windowMs: WINDOW_MS,
    ...(redisUrl ? { redis: { url: redisUrl, prefix } } : {}),
  });
  const writer = createOpenAiWriter({ apiKey: KEY, baseURL: fake.url, model: 'gpt-test', timeoutMs: 30_000, tokens });
  say(
    `tokens: ${callers} callers, budget ${tpm} per ${WINDOW_MS} ms, ${windows} windows (${redisUrl ? 'redis' : 'memory'})`,
  );

  const started = Date.now();
  const end = started + windows * WINDOW_MS;
  let failures = 0;
  // Far more demand than the budget allows: every caller asks again as soon as its article is in.
  await Promise.all(
    Array.from({ length: callers }, async (_, i) => {
      while (Date.now() < end) {
        await writer
          .generateArticle({
            blogId: `b${i}`,
            instanceId: `s${i % 8}`,
            request: { topic: 'tea', keywords: [] },
            attempt: 1,
            signal: new AbortController().signal,
            idea: { title: `Tea ${i}`, summary: 'Leaves, water, time.' },
          })
          .catch(() => failures++);
      }
    }),
  );
  const limit = fake.tokenLimit()!;
  const usedPerWindow: number[] = [];
  for (let w = 1; w < windows; w++) {
    // Full windows only, after the first (which starts empty), shifted by half a window off the start.
    const from = started + w * WINDOW_MS - WINDOW_MS / 2;
    const sum = limit.log.filter((e) => e.at >= from && e.at < from + WINDOW_MS).reduce((n, e) => n + e.tokens, 0);
    usedPerWindow.push(round(sum / tpm, 3));
  }
  const answered = fake.completions().filter((r) => r.usage && r.endedAt !== undefined);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const upFront = answered.map(
    (r) => r.usage!.prompt_tokens + (r.body as { max_completion_tokens: number }).max_completion_tokens,
  );
  const result: TokensResult = {
    scenario: 'real OpenAI adapter over HTTP against the fake OpenAI, in one process',
    tpm,
    windowMs: WINDOW_MS,
    answerMs: ANSWER_MS,
    store: redisUrl ? 'redis' : 'memory',
    callers,
    calls: fake.completions().length,
    rejected429: limit.rejected,
    failures,
    usedPerWindow,
    utilisation: round(mean(usedPerWindow), 3),
    windowMaxOverBudget: round(limit.windowMax / tpm, 3),
    answerShareOfWindow: round(mean(answered.map((r) => r.endedAt! - r.at)) / WINDOW_MS, 3),
    upFrontOverCost: round(mean(upFront) / mean(answered.map((r) => r.usage!.total_tokens)), 3),
  };
  say(
    `tokens: utilisation ${result.utilisation} (${usedPerWindow.join(', ')}), window max ${result.windowMaxOverBudget}` +
      ` of the budget, ${result.rejected429} 429s, ${failures} failures; answers ${result.answerShareOfWindow} of` +
      ` the window, up-front count ${result.upFrontOverCost}x the cost`,
  );
  await tokens.stop();
  await fake.close();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runTokens(process.argv.includes('--quick'), (line) => console.log(line));
  console.log(JSON.stringify(result));
}
