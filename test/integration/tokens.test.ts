/**
 * Tokens per minute against the fake OpenAI, which counts tokens as OpenAI does (the prompt and `max_completion_tokens`
 * up front, then the reported `usage`) and answers 429 when a request does not fit: with the token window in front
 * (in memory, and shared through Redis by two writers) the provider's window holds and no 429 comes; without it the
 * same load is refused. Windows are shortened to a few seconds to keep the test short.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createOpenAiWriter, MAX_COMPLETION_TOKENS } from '../../src/providers/openai.writer';
import type { TextCall } from '../../src/providers/text.port';
import { arrivedBy, createTokenWindow, parseResetDuration, type TokenWindow } from '../../src/providers/token.window';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake.openai';
import { describeWithRedis } from '../support/servers';

const KEY = 'sk-tokens-test-0123456789';
const WINDOW_MS = 3_000;
const TPM = 12_000;
const idea = { title: 'Green tea, brewed right', summary: 'Temperature, time, leaves.' };
let fake: FakeOpenAi | undefined;
const windows: TokenWindow[] = [];

afterEach(async () => {
  await fake?.close();
  await Promise.all(windows.splice(0).map((w) => w.stop()));
});

function call(i: number): TextCall & { idea: typeof idea } {
  return {
    blogId: `b-${i}`,
    instanceId: `s-${i % 3}`,
    request: { topic: 'tea', keywords: [] },
    attempt: 1,
    signal: new AbortController().signal,
    idea,
  };
}

/** `n` articles through `writers` in turn, all at once; resolves with the failures' codes. */
async function load(n: number, writers: Array<ReturnType<typeof createOpenAiWriter>>): Promise<string[]> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => writers[i % writers.length]!.generateArticle(call(i))),
  );
  return results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []));
}

/**
 * Whether a reservation of `n` tokens is granted within 600 ms; then it is given back unused, or its wait aborted.
 */
async function reservedSoon(tokens: TokenWindow, n: number): Promise<boolean> {
  const ac = new AbortController();
  const reservation = tokens.reserve(n, ac.signal);
  const soon = await Promise.race([
    reservation.then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 600)),
  ]);
  ac.abort();
  await (await reservation.catch(() => undefined))?.settle(0);
  return soon;
}

const writerFor = (f: FakeOpenAi, tokens?: TokenWindow) =>
  createOpenAiWriter({
    apiKey: KEY,
    baseURL: f.url,
    model: 'gpt-test',
    timeoutMs: 20_000,
    ...(tokens ? { tokens } : {}),
  });

describe('tokens per minute (in memory)', () => {
  it('without the window, the same load meets 429s for tokens (the fake enforces its limit)', async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS });
    // Answers take a second: every request's up-front count is still held when the others arrive.
    fake.script(() => ({ delayMs: 1_000 }));
    const failures = await load(12, [writerFor(fake)]);
    expect(fake.tokenLimit()!.rejected).toBeGreaterThan(0);
    expect(failures).toContain('RATE_LIMITED');
  });

  it('with it: no 429, the provider never counts more than its limit in a window, and the budget is used', async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS });
    fake.script(() => ({ delayMs: 40 }));
    const tokens = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS });
    windows.push(tokens);
    const started = Date.now();
    const failures = await load(80, [writerFor(fake, tokens)]);
    const elapsed = Date.now() - started;
    const limit = fake.tokenLimit()!;
    expect(failures).toEqual([]);
    expect(limit.rejected).toBe(0);
    expect(limit.windowMax).toBeLessThanOrEqual(TPM * 1.1);
    // Every request set max_completion_tokens: the stage's ceiling at first, then learned from the answers (lower).
    const sent = fake.completions().map((r) => (r.body as { max_completion_tokens?: number }).max_completion_tokens!);
    expect(sent[0]).toBe(MAX_COMPLETION_TOKENS.blog_article);
    expect(sent.every((n) => n >= 256 && n <= MAX_COMPLETION_TOKENS.blog_article)).toBe(true);
    expect(Math.min(...sent)).toBeLessThan(MAX_COMPLETION_TOKENS.blog_article);
    // Throughput: the load needed several windows, and the tokens it used fill most of them.
    const total = limit.log.reduce((n, e) => n + e.tokens, 0);
    expect(total).toBeGreaterThan(TPM);
    const used = total / (TPM * Math.ceil(elapsed / WINDOW_MS));
    console.log(`tokens: ${total} in ${elapsed} ms; ${(used * 100).toFixed(0)} % of the budget's windows`);
  }, 60_000);

  it("the provider's own limit is lower than INKWELL_OPENAI_TPM: its headers cap ours, no 429", async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM / 2, windowMs: WINDOW_MS });
    fake.script(() => ({ delayMs: 40 }));
    const tokens = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS });
    windows.push(tokens);
    const failures = await load(40, [writerFor(fake, tokens)]);
    expect(failures).toEqual([]);
    expect(fake.tokenLimit()!.rejected).toBe(0);
    expect(fake.tokenLimit()!.windowMax).toBeLessThanOrEqual((TPM / 2) * 1.1);
  }, 60_000);

  it('another client on the same key: what the provider counted beyond ours slows us down, no 429', async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS });
    // The other client's request is counted at its up-front 8,000 tokens for 1.5 s; ours answer in 40 ms.
    fake.script((_, i) => ({ delayMs: i === 0 ? 1_500 : 40 }));
    const other = fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'Title idea: other' }],
        max_completion_tokens: 8_000,
        response_format: { type: 'json_schema', json_schema: { name: 'blog_article', strict: true, schema: {} } },
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const tokens = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS });
    windows.push(tokens);
    const failures = await load(12, [writerFor(fake, tokens)]);
    expect((await other).status).toBe(200);
    expect(failures).toEqual([]);
    expect(fake.tokenLimit()!.rejected).toBe(0);
  }, 60_000);

  it("a settled call counts from its reservation plus the arrival slack, not from its end (the budget's use)", async () => {
    let clock = 0;
    const tokens = createTokenWindow({ name: 'openai', tpm: 1_000, windowMs: 10_000, slackMs: 100, now: () => clock });
    windows.push(tokens);
    const first = await tokens.reserve(600);
    clock = 5_000; // a long call: answered 5 s after it reserved
    await first.settle(600);
    clock = 10_101; // its request reached the provider by 100 ms: out of the provider's window now
    expect(await reservedSoon(tokens, 600)).toBe(true);
  });

  it("with the provider's processing time, a settled call counts from its answer's end less that time", async () => {
    let clock = 0;
    const tokens = createTokenWindow({
      name: 'openai',
      tpm: 1_000,
      windowMs: 10_000,
      slackMs: 2_000,
      now: () => clock,
    });
    windows.push(tokens);
    const first = await tokens.reserve(600);
    clock = 5_000; // answered 5 s after it reserved; the provider says it worked 4,990 ms on it: it arrived by 10 ms
    await first.settle(600, { limit: 1_000, remaining: 400, processingMs: 4_990 });
    clock = 10_011; // out of the provider's window, though not yet 2 s (the slack) + 10 s after the reservation
    expect(await reservedSoon(tokens, 600)).toBe(true);
    // Never before the reservation, whatever the provider says.
    expect(arrivedBy(1_000, 5_000, 2_000, 9_000)).toBe(1_000);
    expect(arrivedBy(1_000, 5_000, 2_000)).toBe(3_000);
    expect(arrivedBy(1_000, 5_000, 2_000, 3_500)).toBe(1_500);
    // A request that left late (a busy event loop): its arrival by the provider's time, later than the slack's.
    expect(arrivedBy(1_000, 5_000, 2_000, 100)).toBe(4_900);
  });

  it('the fake cuts an answer longer than max_completion_tokens, as OpenAI does: paid for, and a retryable failure', async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS, cutAtMax: true });
    fake.script(() => ({ content: JSON.stringify({ title: 'Long', excerpt: '', body_markdown: 'x'.repeat(12_000) }) }));
    const failures = await load(1, [writerFor(fake)]);
    expect(failures).toEqual(['BAD_OUTPUT']);
    const [request] = fake.completions();
    expect(request!.finishReason).toBe('length');
    expect(request!.usage!.completion_tokens).toBe(MAX_COMPLETION_TOKENS.blog_article);
  });

  it('a call larger than the whole budget runs alone once the window is empty', async () => {
    let clock = 0;
    const tokens = createTokenWindow({ name: 'openai', tpm: 1_000, windowMs: 10_000, slackMs: 100, now: () => clock });
    windows.push(tokens);
    await (await tokens.reserve(600)).settle(600);
    clock = 10_101;
    const ac = new AbortController();
    const big = tokens.reserve(5_000, ac.signal);
    const ran = await Promise.race([
      big.then(() => true),
      new Promise((resolve) => setTimeout(() => resolve(false), 600)),
    ]);
    ac.abort();
    expect(ran).toBe(true);
    await (await big.catch(() => undefined))?.settle(0);
  });

  it('parses the reset durations OpenAI sends', () => {
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('1s')).toBe(1_000);
    expect(parseResetDuration('250ms')).toBe(250);
    expect(parseResetDuration('1.5s')).toBe(1_500);
    expect(parseResetDuration('1h2m3s')).toBe(3_723_000);
    expect(parseResetDuration('soon')).toBeUndefined();
  });
});

await describeWithRedis('tokens per minute shared through Redis', (redis) => {
  afterAll(() => fake?.close());

  it('two writers with their own windows on one Redis: no 429 and the window holds', async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM, windowMs: WINDOW_MS });
    fake.script(() => ({ delayMs: 40 }));
    const shared = { url: redis().url, prefix: redis().prefix };
    const a = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS, redis: shared });
    const b = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS, redis: shared });
    windows.push(a, b);
    const failures = await load(60, [writerFor(fake, a), writerFor(fake, b)]);
    expect(failures).toEqual([]);
    expect(fake.tokenLimit()!.rejected).toBe(0);
    expect(fake.tokenLimit()!.windowMax).toBeLessThanOrEqual(TPM * 1.1);
  }, 60_000);

  it("a settled call counts from its answer's end less the provider's processing time (Redis server time)", async () => {
    const shared = { url: redis().url, prefix: `${redis().prefix}-processing` };
    const tokens = createTokenWindow({ name: 'openai', tpm: 1_000, windowMs: 1_500, slackMs: 1_400, redis: shared });
    windows.push(tokens);
    const first = await tokens.reserve(600);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // It arrived by 10 ms after the reservation: out of the window 1.51 s after it, not 2.5 s (answer's end + 1.5 s).
    await first.settle(600, { limit: 1_000, remaining: 400, processingMs: 990 });
    const settledAt = Date.now();
    const second = await tokens.reserve(600);
    const waited = Date.now() - settledAt;
    await second.settle(0);
    expect(waited).toBeLessThan(1_100);
  }, 20_000);

  it("two processes, the provider's limit lower than INKWELL_OPENAI_TPM: the headers cap both, no 429", async () => {
    fake = await startFakeOpenAi({ apiKey: KEY, tpm: TPM / 2, windowMs: WINDOW_MS });
    fake.script(() => ({ delayMs: 40 }));
    const shared = { url: redis().url, prefix: `${redis().prefix}-cap` };
    const a = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS, redis: shared });
    const b = createTokenWindow({ name: 'openai', tpm: TPM, windowMs: WINDOW_MS, redis: shared });
    windows.push(a, b);
    const failures = await load(40, [writerFor(fake, a), writerFor(fake, b)]);
    expect(failures).toEqual([]);
    expect(fake.tokenLimit()!.rejected).toBe(0);
    expect(fake.tokenLimit()!.windowMax).toBeLessThanOrEqual((TPM / 2) * 1.1);
  }, 60_000);
});
