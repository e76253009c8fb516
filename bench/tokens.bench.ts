/**
 * Token budget as the binding limit (issue #19): OpenAI calls from many blogs at once through the token window, against
 * the fake OpenAI enforcing the same tokens-per-window with its own count. Reports, per full window, the tokens the
 * provider counted ÷ the budget, and the 429s it answered. Windows are shortened (`WINDOW_MS`) so a run takes
 * seconds; the ratio does not depend on the window's length, only on the budget's size against one call's
 * reservation (OpenAI's up-front count: the prompt and `max_completion_tokens`).
 * Run: `npx tsx bench/tokens.bench.ts [tpm] [windows]`.
 */
import { createOpenAiWriter } from '../src/providers/openai.writer';
import { createTokenWindow } from '../src/providers/token.window';
import { startFakeOpenAi } from '../test/support/fake.openai';

const TPM = Number(process.argv[2] ?? 60_000);
const WINDOWS = Number(process.argv[3] ?? 4);
const WINDOW_MS = 3_000;
const KEY = 'sk-bench-0123456789';

const fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS });
fake.script(() => ({ delayMs: 200 })); // an answer takes a while, as a real one does
const tokens = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS });
const writer = createOpenAiWriter({ apiKey: KEY, baseURL: fake.url, model: 'gpt-test', timeoutMs: 30_000, tokens });

const started = Date.now();
const end = started + WINDOWS * WINDOW_MS;
let failures = 0;
// 64 blogs keep calling until the end: far more demand than the budget allows.
await Promise.all(
  Array.from({ length: 64 }, async (_, i) => {
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
const perWindow: number[] = [];
for (let w = 1; w < WINDOWS; w++) {
  // Full windows only, after the first (which starts empty).
  const from = started + w * WINDOW_MS - WINDOW_MS / 2;
  perWindow.push(limit.log.filter((e) => e.at >= from && e.at < from + WINDOW_MS).reduce((n, e) => n + e.tokens, 0));
}
const ratios = perWindow.map((t) => t / TPM);
console.log(
  JSON.stringify({
    tpm: TPM,
    windowMs: WINDOW_MS,
    calls: fake.completions().length,
    rejected429: limit.rejected,
    failures,
    windowMaxOverBudget: +(limit.windowMax / TPM).toFixed(3),
    usedPerWindowOverBudget: ratios.map((r) => +r.toFixed(3)),
    meanUsed: +(ratios.reduce((a, b) => a + b, 0) / ratios.length).toFixed(3),
  }),
);
await tokens.stop();
await fake.close();
