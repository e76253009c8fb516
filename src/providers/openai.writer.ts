/*
 * OpenAI text writer: Chat Completions with strict JSON-schema output, so OpenAI-compatible servers work too.
 * The SDK's own retries are off (`maxRetries: 0`): the blog machine retries with backoff, and every HTTP call must
 * pass through `limit` so that the rate limits hold for retries as well.
 */
import OpenAI from 'openai';
import { z } from 'zod';
import type { Article, Idea } from '../../machines/blog.types';
import { LeaseExpiredError, StageFailureError } from '../errors';
import { renderMarkdown } from './html';
import { abortedFailure } from './offline/seed';
import { clip } from './offline/offline.templates';
import type { TextCall, TextWriter } from './text.port';
import { parseResetDuration, type ProviderTokens, type TokenWindow } from './token.window';
import { createCompletionLearner } from './completion.learner';
import { parseRetryAfter, undiciFetch } from './undici.fetch';

export { parseRetryAfter };

/** Runs `fn` under the provider limits of a store; the default runs it at once. */
export type ProviderLimit = <T>(instanceId: string, fn: () => Promise<T>) => Promise<T>;

/** Options of the OpenAI writer; `baseURL` includes `/v1`. */
export interface OpenAiWriterOptions {
  apiKey: string;
  baseURL?: string;
  model: string;
  timeoutMs?: number;
  limit?: ProviderLimit;
  /** Tokens per minute (`INKWELL_OPENAI_TPM`): every call reserves its estimate here first, settles after. */
  tokens?: TokenWindow;
}

/**
 * The most a stage's answer may ever be (`max_completion_tokens`): OpenAI counts it against tokens-per-minute up
 * front, so it is set per stage, with room to spare over what the stage asks for (5 ideas; an article of about 800
 * words, some 1100 tokens of Markdown in JSON), and lowered from there as answers come in (completion.learner.ts).
 * An answer cut off at it fails retryably (`BAD_OUTPUT`).
 */
export const MAX_COMPLETION_TOKENS = { blog_ideas: 800, blog_article: 2_400 } as const;

/**
 * At least what OpenAI counts for a request before it runs: its prompt estimated from characters (about 4 a token,
 * the structured-output schema included, plus a few tokens of framing per message) and the answer's maximum.
 */
export function estimateTokens(messages: Array<{ content: string }>, schema: object, maxCompletion: number): number {
  const chars = messages.reduce((n, m) => n + m.content.length, 0) + JSON.stringify(schema).length;
  return Math.ceil(chars / 4) + 4 * messages.length + 3 + maxCompletion;
}

const IDEAS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['ideas'],
  properties: {
    ideas: {
      type: 'array',
      minItems: 3,
      maxItems: 5,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['title', 'summary'],
        properties: { title: { type: 'string' }, summary: { type: 'string' } },
      },
    },
  },
};

const ARTICLE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['title', 'excerpt', 'body_markdown'],
  properties: { title: { type: 'string' }, excerpt: { type: 'string' }, body_markdown: { type: 'string' } },
};

const text = z.string().trim().min(1);
const IdeasOutput = z.object({ ideas: z.array(z.object({ title: text, summary: z.string().trim() })).min(3) });
const ArticleOutput = z.object({ title: text, excerpt: z.string().trim(), body_markdown: text });

/** The `x-ratelimit-*-tokens` headers of an answer (and `openai-processing-ms`); `null` without the first two. */
export function providerTokens(headers: Headers | undefined): ProviderTokens | null {
  const num = (name: string) => {
    const value = headers?.get(name);
    const n = value === null || value === undefined || value.trim() === '' ? NaN : Number(value);
    return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
  };
  const limit = num('x-ratelimit-limit-tokens');
  const remaining = num('x-ratelimit-remaining-tokens');
  const processingMs = num('openai-processing-ms');
  if (limit === undefined && remaining === undefined) return null;
  return {
    ...(limit !== undefined ? { limit } : {}),
    ...(remaining !== undefined ? { remaining } : {}),
    ...(processingMs !== undefined ? { processingMs } : {}),
  };
}

/** The instructions every call shares: language, tone and keywords of the request. */
function systemPrompt(call: TextCall): string {
  const { language, tone, keywords } = call.request;
  return [
    "You write posts for an online store's blog. Be accurate and practical; never invent prices or facts.",
    `Write in ${language ? clip(language, 40) : 'the language of the topic'}, in a ${tone ? clip(tone, 80) : 'friendly, professional'} tone.`,
    keywords.length > 0 ? `Work in these keywords naturally: ${keywords.map((k) => clip(k, 40)).join(', ')}.` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Maps any SDK error to a `StageFailureError`, never repeating the key. */
function toFailure(error: unknown, signal: AbortSignal, apiKey: string): StageFailureError | LeaseExpiredError {
  if (error instanceof StageFailureError || error instanceof LeaseExpiredError) return error; // the latter: not made
  if (signal.aborted || error instanceof OpenAI.APIUserAbortError) return abortedFailure(signal);
  const redact = (m: string) =>
    m
      .split(apiKey)
      .join('[redacted]')
      .replace(/sk-[\w*-]{6,}/g, 'sk-[redacted]');
  const message = redact(`OpenAI: ${error instanceof Error ? error.message : String(error)}`);
  const fail = (code: string, retryable: boolean, retryAfterMs?: number) =>
    new StageFailureError(code, message, retryable, retryAfterMs, { cause: error });
  if (error instanceof OpenAI.APIConnectionTimeoutError) return fail('OPENAI_TIMEOUT', true);
  if (error instanceof OpenAI.APIConnectionError) return fail('OPENAI_UNAVAILABLE', true);
  if (!(error instanceof OpenAI.APIError) || error.status === undefined) return fail('OPENAI_ERROR', true);
  const { status, headers } = error;
  if (status === 429) {
    if (error.code === 'insufficient_quota' || error.type === 'insufficient_quota')
      return fail('QUOTA_EXHAUSTED', false);
    return fail('RATE_LIMITED', true, parseRetryAfter(headers));
  }
  // 409 is a lock conflict at OpenAI, worth another try like 408 and 5xx.
  if (status >= 500 || status === 408 || status === 409)
    return fail('OPENAI_UNAVAILABLE', true, parseRetryAfter(headers));
  if (status === 401 || status === 403) return fail('OPENAI_AUTH', false);
  if (status === 404) return fail('OPENAI_NOT_FOUND', false);
  return fail('OPENAI_BAD_REQUEST', false);
}

/** The JSON the model wrote, or a failure saying why there is none. */
function parseContent(completion: OpenAI.ChatCompletion): unknown {
  const choice = completion.choices[0];
  const fail = (code: string, message: string, retryable: boolean) =>
    new StageFailureError(code, `OpenAI: ${message}`, retryable);
  if (!choice) throw fail('BAD_OUTPUT', 'the response has no choices', true);
  if (choice.message.refusal) throw fail('CONTENT_REFUSED', `refused: ${clip(choice.message.refusal, 300)}`, false);
  if (choice.finish_reason === 'content_filter') throw fail('CONTENT_FILTERED', 'stopped by the content filter', false);
  // Cut off or not JSON: another sample may well fit, so these are retryable.
  if (choice.finish_reason === 'length') throw fail('BAD_OUTPUT', 'the output was cut off at the token limit', true);
  try {
    return JSON.parse(choice.message.content ?? '');
  } catch {
    throw fail('BAD_OUTPUT', 'the output is not valid JSON', true);
  }
}

/** A text writer over the OpenAI Chat Completions API (or any server that speaks it). */
export function createOpenAiWriter(opts: OpenAiWriterOptions): TextWriter {
  const client = new OpenAI({
    apiKey: opts.apiKey,
    ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 120_000,
    // undici's `request` underneath, not Node's `fetch`: the same answers at much less CPU a call (undici.fetch.ts).
    fetch: undiciFetch,
  });
  const limit: ProviderLimit = opts.limit ?? ((_, fn) => fn());
  const learner = createCompletionLearner(MAX_COMPLETION_TOKENS);

  /** One completion whose content must match `schema`; returns the parsed JSON. */
  async function complete(
    call: TextCall,
    name: keyof typeof MAX_COMPLETION_TOKENS,
    schema: object,
    prompt: string,
  ): Promise<unknown> {
    const messages = [
      { role: 'system' as const, content: systemPrompt(call) },
      { role: 'user' as const, content: prompt },
    ];
    try {
      const completion = await limit(call.instanceId, () => send(call, messages, name, schema));
      // Paid for even when the content turns out unusable: reported before it is parsed.
      if (completion.usage) {
        call.onUsage?.({
          inputTokens: completion.usage.prompt_tokens,
          outputTokens: completion.usage.completion_tokens,
        });
      }
      return parseContent(completion);
    } catch (error) {
      throw toFailure(error, call.signal, opts.apiKey);
    }
  }

  /** One request, inside the token window when there is one: reserve the estimate, settle with `usage`. */
  async function send(
    call: TextCall,
    messages: Array<{ role: 'system' | 'user'; content: string }>,
    name: keyof typeof MAX_COMPLETION_TOKENS,
    schema: object,
  ): Promise<OpenAI.ChatCompletion> {
    // Decided when the tokens are reserved: a call that waited asks for what was learned meanwhile.
    let maxTokens = learner.limit(name);
    const reservation = await opts.tokens?.reserve(
      () => estimateTokens(messages, schema, (maxTokens = learner.limit(name))),
      call.signal,
    );
    let used: number | undefined;
    let seen: ProviderTokens | null | undefined;
    try {
      const { data, response } = await client.chat.completions
        .create(
          {
            model: opts.model,
            messages,
            max_completion_tokens: maxTokens,
            response_format: { type: 'json_schema', json_schema: { name, strict: true, schema: { ...schema } } },
          },
          { signal: call.signal },
        )
        .withResponse();
      used = data.usage?.total_tokens;
      seen = providerTokens(response.headers);
      learner.observe(name, data.usage?.completion_tokens, data.choices[0]?.finish_reason === 'length');
      return data;
    } catch (error) {
      if (error instanceof OpenAI.APIError && error.headers) seen = providerTokens(error.headers);
      // A 429 for tokens was not counted by the provider; anything else may have been, at the estimate.
      if (error instanceof OpenAI.APIError && error.status === 429) {
        used = 0;
        await pauseAfter429(error.headers);
      }
      throw error;
    } finally {
      await reservation?.settle(used, seen);
    }
  }

  /**
   * After a 429 for tokens (the provider saw more than our window did: another client, a lower limit not told yet),
   * every process waits for `retry-after`, else the share of `x-ratelimit-reset-tokens` (the time until the
   * provider's window is empty again) that the missing tokens take.
   */
  async function pauseAfter429(headers: Headers | undefined) {
    if (!opts.tokens) return;
    const { limit, remaining } = providerTokens(headers) ?? {};
    const resetMs = parseResetDuration(headers?.get('x-ratelimit-reset-tokens'));
    const retryMs = parseRetryAfter(headers);
    const share =
      limit !== undefined && remaining !== undefined && limit > remaining
        ? Math.min(1, Math.max(0.05, 1 - remaining / limit))
        : 1;
    const ms = retryMs ?? (resetMs === undefined ? 1_000 : Math.ceil(resetMs * share));
    await opts.tokens.pause(ms);
  }

  /** Parses `value` with `schema`, or fails retryably: another sample may well fit. */
  function shape<T>(schema: z.ZodType<T>, value: unknown): T {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    throw new StageFailureError(
      'BAD_OUTPUT',
      `OpenAI: the output has the wrong shape (${parsed.error.issues[0]?.message})`,
      true,
    );
  }

  return {
    name: 'openai',
    async generateIdeas(call): Promise<Idea[]> {
      const topic = call.request.topic ?? call.request.idea?.title ?? call.request.keywords[0] ?? 'our products';
      const prompt = `Propose 5 distinct blog post ideas about: ${clip(topic, 500)}
Each idea has a catchy title (at most 100 characters) and a one- or two-sentence summary of the post.`;
      const output = shape(IdeasOutput, await complete(call, 'blog_ideas', IDEAS_SCHEMA, prompt));
      return output.ideas.slice(0, 5).map((i) => ({ title: clip(i.title, 200), summary: clip(i.summary, 2000) }));
    },
    async generateArticle(call): Promise<Article> {
      const { idea } = call;
      const prompt = `Write a blog post of about 800 words.
Title idea: ${clip(idea.title, 200)}
${idea.summary ? `What it covers: ${clip(idea.summary, 2000)}\n` : ''}${call.request.topic ? `Topic: ${clip(call.request.topic, 500)}\n` : ''}
Give a title, an excerpt of one or two sentences (plain text), and the body in Markdown (headings from ##, no title heading, no HTML).`;
      const output = shape(ArticleOutput, await complete(call, 'blog_article', ARTICLE_SCHEMA, prompt));
      return {
        title: clip(output.title, 200),
        excerpt: clip(output.excerpt, 300),
        markdown: output.body_markdown,
        html: renderMarkdown(output.body_markdown),
      };
    },
  };
}
