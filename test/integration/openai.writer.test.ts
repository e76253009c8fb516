import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BlogRequest } from '../../machines/blog.types';
import { StageFailureError } from '../../src/errors';
import { createOpenAiWriter, parseRetryAfter, type OpenAiWriterOptions } from '../../src/providers/openai.writer';
import type { TextCall } from '../../src/providers/text.port';
import { openAiReplies, startFakeOpenAi, type FakeOpenAi } from '../support/fake.openai';

const KEY = 'sk-test-0123456789abcdef';
const request: BlogRequest = {
  topic: 'sourdough baking',
  keywords: ['starter', 'hydration'],
  language: 'en',
  tone: 'warm',
};
const idea = { title: 'Sourdough for beginners', summary: 'A first loaf, step by step.' };

function callFor(signal = new AbortController().signal): TextCall {
  return { blogId: 'blog-1', instanceId: 'store-1', request, attempt: 1, signal };
}

/** The StageFailureError a promise rejects with. */
async function failureOf(promise: Promise<unknown>): Promise<StageFailureError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StageFailureError);
  return error as StageFailureError;
}

let fake: FakeOpenAi;
const writerFor = (more: Partial<OpenAiWriterOptions> = {}) =>
  createOpenAiWriter({ apiKey: KEY, baseURL: fake.url, model: 'gpt-test', timeoutMs: 2000, ...more });

beforeAll(async () => {
  fake = await startFakeOpenAi({ apiKey: KEY });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
  fake.script(() => undefined);
});

describe('openai writer against a fake OpenAI server', () => {
  it('returns 3 to 5 ideas, asking for a strict JSON schema with the topic, keywords, language and tone', async () => {
    const writer = writerFor();
    expect(writer.name).toBe('openai');
    const ideas = await writer.generateIdeas(callFor());
    expect(ideas).toHaveLength(5);
    expect(ideas[0]?.title).toContain('sourdough baking');
    const [req] = fake.completions();
    const body = req?.body as { model: string; messages: { content: string }[]; response_format: unknown };
    expect(body.model).toBe('gpt-test');
    expect(body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'blog_ideas', strict: true },
    });
    const prompt = body.messages.map((m) => m.content).join('\n');
    for (const word of ['sourdough baking', 'starter', 'hydration', 'warm', 'en']) expect(prompt).toContain(word);
    expect(req?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('writes an article whose html is rendered from the markdown', async () => {
    const article = await writerFor().generateArticle({ ...callFor(), idea });
    expect(article.title).toBe(idea.title);
    expect(article.markdown).toContain('## Why it matters');
    expect(article.html).toContain('<h2>Why it matters</h2>');
    expect((fake.completions()[0]?.body as { response_format: unknown }).response_format).toMatchObject({
      json_schema: { name: 'blog_article', strict: true },
    });
  });

  it('sanitizes the article html: scripts and event handlers are gone', async () => {
    fake.enqueue(
      openAiReplies.article('Hello <script>alert(1)</script>\n\n<img src="https://x.test/a.png" onerror="alert(2)">'),
    );
    const article = await writerFor().generateArticle({ ...callFor(), idea });
    expect(article.html).not.toMatch(/<script|alert\(1\)|onerror/i);
    expect(article.html).toContain('<img src="https://x.test/a.png"');
  });

  it('passes every call through the limit, keyed by store', async () => {
    const seen: string[] = [];
    const writer = writerFor({ limit: (instanceId, fn) => (seen.push(instanceId), fn()) });
    await writer.generateIdeas(callFor());
    await writer.generateArticle({ ...callFor(), idea });
    expect(seen).toEqual(['store-1', 'store-1']);
  });

  it('never has more calls in flight than the limit lets through (one at a time here)', async () => {
    const own = await startFakeOpenAi();
    try {
      own.script(() => openAiReplies.slow(50));
      let chain: Promise<unknown> = Promise.resolve();
      const serial = <T>(_: string, fn: () => Promise<T>): Promise<T> => {
        const run = chain.then(fn, fn);
        chain = run.catch(() => undefined);
        return run;
      };
      const writer = createOpenAiWriter({ apiKey: KEY, baseURL: own.url, model: 'gpt-test', limit: serial });
      await Promise.all([1, 2, 3].map(() => writer.generateIdeas(callFor())));
      expect(own.completions()).toHaveLength(3);
      expect(own.maxInFlight()).toBe(1);
    } finally {
      await own.close();
    }
  });
});

describe('openai writer error mapping', () => {
  const cases: [string, () => void, { code: string; retryable: boolean; retryAfterMs?: number }][] = [
    [
      '429 with retry-after',
      () => fake.enqueue(openAiReplies.rateLimited({ 'retry-after': '7' })),
      { code: 'RATE_LIMITED', retryable: true, retryAfterMs: 7000 },
    ],
    [
      '429 with retry-after-ms',
      () => fake.enqueue(openAiReplies.rateLimited({ 'retry-after-ms': '1500' })),
      { code: 'RATE_LIMITED', retryable: true, retryAfterMs: 1500 },
    ],
    [
      '429 insufficient_quota',
      () => fake.enqueue(openAiReplies.insufficientQuota()),
      { code: 'QUOTA_EXHAUSTED', retryable: false },
    ],
    ['500', () => fake.enqueue(openAiReplies.status(500)), { code: 'OPENAI_UNAVAILABLE', retryable: true }],
    ['503', () => fake.enqueue(openAiReplies.status(503)), { code: 'OPENAI_UNAVAILABLE', retryable: true }],
    ['408', () => fake.enqueue(openAiReplies.status(408)), { code: 'OPENAI_UNAVAILABLE', retryable: true }],
    ['400', () => fake.enqueue(openAiReplies.status(400)), { code: 'OPENAI_BAD_REQUEST', retryable: false }],
    ['403', () => fake.enqueue(openAiReplies.status(403)), { code: 'OPENAI_AUTH', retryable: false }],
    [
      '404',
      () => fake.enqueue(openAiReplies.status(404, 'model_not_found')),
      { code: 'OPENAI_NOT_FOUND', retryable: false },
    ],
    ['a dropped connection', () => fake.enqueue(openAiReplies.drop()), { code: 'OPENAI_UNAVAILABLE', retryable: true }],
    ['a refusal', () => fake.enqueue(openAiReplies.refusal()), { code: 'CONTENT_REFUSED', retryable: false }],
    [
      'finish_reason content_filter',
      () => fake.enqueue(openAiReplies.contentFilter()),
      { code: 'CONTENT_FILTERED', retryable: false },
    ],
    ['finish_reason length', () => fake.enqueue(openAiReplies.truncated()), { code: 'BAD_OUTPUT', retryable: true }],
    [
      'content that is not JSON',
      () => fake.enqueue(openAiReplies.content('Sure! Here are ideas')),
      { code: 'BAD_OUTPUT', retryable: true },
    ],
    [
      'JSON of the wrong shape',
      () => fake.enqueue(openAiReplies.content('{"ideas":[{"title":"only one","summary":""}]}')),
      { code: 'BAD_OUTPUT', retryable: true },
    ],
  ];

  it.each(cases)('maps %s, trying once (no SDK retry)', async (_name, arrange, expected) => {
    arrange();
    const failure = await failureOf(writerFor().generateIdeas(callFor()));
    expect({ code: failure.code, retryable: failure.retryable, retryAfterMs: failure.retryAfterMs }).toEqual({
      retryAfterMs: undefined,
      ...expected,
    });
    expect(fake.completions()).toHaveLength(1);
  });

  it('maps a wrong key to OPENAI_AUTH without repeating the key', async () => {
    const failure = await failureOf(writerFor({ apiKey: 'sk-wrong-key-9876543210' }).generateIdeas(callFor()));
    expect(failure).toMatchObject({ code: 'OPENAI_AUTH', retryable: false });
    expect(failure.message).not.toContain('sk-wrong-key-9876543210');
  });

  it('fails retryably when the response is slower than timeoutMs', async () => {
    fake.enqueue(openAiReplies.slow(1500));
    const started = Date.now();
    const failure = await failureOf(writerFor({ timeoutMs: 300 }).generateIdeas(callFor()));
    expect(failure).toMatchObject({ code: 'OPENAI_TIMEOUT', retryable: true });
    expect(Date.now() - started).toBeLessThan(1400);
    expect(fake.completions()).toHaveLength(1);
  });

  it('stops at once when the call is aborted', async () => {
    fake.enqueue(openAiReplies.hang());
    const controller = new AbortController();
    const pending = writerFor().generateIdeas(callFor(controller.signal));
    setTimeout(() => controller.abort(), 50);
    expect(await failureOf(pending)).toMatchObject({ code: 'ABORTED', retryable: false });
  });
});

describe('parseRetryAfter', () => {
  it('reads milliseconds, seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(parseRetryAfter(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }), now)).toBe(5000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
