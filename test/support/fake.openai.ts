/**
 * A local fake of the OpenAI Chat Completions API (127.0.0.1, random port), close enough for the real `openai` SDK:
 * it answers structured-output requests with JSON for the requested schema (`blog_ideas` or `blog_article`), and
 * each reply can be scripted per test (rate limits, quota, 5xx, refusals, filters, slow or hanging responses).
 * Every request is recorded with its timestamps. `startRecordingServer` is shared with the Replicate fake.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the fake saw it; `endedAt` is set once it was answered (or the client went away). */
export interface RecordedRequest {
  /** The `usage` a 200 completion reported, as the client was told it. */
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  /** The `finish_reason` a 200 completion carried (`length`: cut off at `max_completion_tokens`). */
  finishReason?: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  at: number;
  endedAt?: number;
}

/** What to answer: a JSON response after `delayMs`, or no answer at all (`hang`), or a dropped connection. */
export type HttpReply =
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  | { hang: true }
  | { drop: true };

/** A recording HTTP server; `maxInFlight` is the most requests it held open at once. */
export interface RecordingServer {
  url: string;
  requests: RecordedRequest[];
  maxInFlight(): number;
  close(): Promise<void>;
}

function send(res: ServerResponse, reply: { status: number; body?: unknown; headers?: Record<string, string> }) {
  const body = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
  res.end(body);
}

/** Starts a server that records every request and answers with `handle`'s reply. */
export async function startRecordingServer(handle: (req: RecordedRequest) => HttpReply): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // not JSON: kept as text
      }
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
      };
      requests.push(record);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      res.on('close', () => {
        inFlight--;
        record.endedAt = Date.now();
      });
      const reply = handle(record);
      if ('drop' in reply) req.socket.destroy();
      else if ('status' in reply) {
        const timer = setTimeout(() => !res.destroyed && send(res, reply), reply.delayMs ?? 0);
        res.on('close', () => clearTimeout(timer));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    maxInFlight: () => maxInFlight,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A scripted answer to one chat completion; `undefined` from a script means the normal answer. */
export type OpenAiReply = HttpReply | CompletionReply;

/** A 200 completion: `content` `undefined` means the normal JSON for the requested schema. */
export interface CompletionReply {
  content?: string | null;
  finishReason?: string;
  refusal?: string | null;
  delayMs?: number;
}

const isHttpReply = (reply: OpenAiReply): reply is HttpReply => 'status' in reply || 'hang' in reply || 'drop' in reply;

const apiError = (status: number, type: string, code: string | null, message: string, headers = {}): HttpReply => ({
  status,
  headers,
  body: { error: { message, type, param: null, code } },
});

/** Ready-made faults and odd answers, as OpenAI sends them. */
export const openAiReplies = {
  rateLimited: (headers: Record<string, string> = { 'retry-after': '2' }): HttpReply =>
    apiError(429, 'requests', 'rate_limit_exceeded', 'Rate limit reached for requests', headers),
  insufficientQuota: (): HttpReply =>
    apiError(
      429,
      'insufficient_quota',
      'insufficient_quota',
      'You exceeded your current quota, please check your plan.',
    ),
  status: (status: number, code: string | null = null, message = `status ${status}`): HttpReply =>
    apiError(status, status >= 500 ? 'server_error' : 'invalid_request_error', code, message),
  refusal: (): OpenAiReply => ({ content: null, refusal: "I'm sorry, I can't help with that." }),
  contentFilter: (): OpenAiReply => ({ content: null, finishReason: 'content_filter' }),
  truncated: (): OpenAiReply => ({ content: '{"title": "Cut o', finishReason: 'length' }),
  content: (content: string): OpenAiReply => ({ content }),
  article: (markdown: string): OpenAiReply => ({
    content: JSON.stringify({ title: 'A scripted article', excerpt: 'Scripted.', body_markdown: markdown }),
  }),
  slow: (delayMs: number): OpenAiReply => ({ delayMs }),
  hang: (): HttpReply => ({ hang: true }),
  drop: (): HttpReply => ({ drop: true }),
};

/** The fake OpenAI server; `url` includes `/v1`; `script` decides the replies of the chat requests that follow. */
export interface FakeOpenAi {
  url: string;
  requests: RecordedRequest[];
  /** Recorded `POST /v1/chat/completions` requests. */
  completions(): RecordedRequest[];
  /** Tokens reported in `usage` so far (what the provider would bill). */
  reported(): { input: number; output: number };
  /** With `tpm`: requests refused 429 for tokens, the most tokens counted in any window, and the count log. */
  tokenLimit(): { rejected: number; windowMax: number; log: Array<{ at: number; tokens: number }> } | undefined;
  maxInFlight(): number;
  /** `fn(request, index)` answers the index-th chat request (0-based); `undefined` keeps the normal answer. */
  script(fn: (req: RecordedRequest, index: number) => OpenAiReply | undefined): void;
  /** Answers the next chat requests with these replies, in order, then normally again. */
  enqueue(...replies: OpenAiReply[]): void;
  close(): Promise<void>;
}

interface ChatBody {
  model?: string;
  messages?: { role: string; content: string }[];
  response_format?: { type?: string; json_schema?: { name?: string; strict?: boolean; schema?: unknown } };
}

/** The JSON a well-behaved model would write for the requested schema. */
function normalContent(body: ChatBody): string | undefined {
  const prompt = body.messages?.find((m) => m.role === 'user')?.content ?? '';
  const topic = /about: (.*)/.exec(prompt)?.[1] ?? /Title idea: (.*)/.exec(prompt)?.[1] ?? 'the topic';
  switch (body.response_format?.json_schema?.name) {
    case 'blog_ideas':
      return JSON.stringify({
        ideas: [1, 2, 3, 4, 5].map((n) => ({
          title: `Idea ${n}: ${topic}`,
          summary: `Why ${topic} matters, part ${n}.`,
        })),
      });
    case 'blog_article':
      return JSON.stringify({
        title: topic,
        excerpt: `A short look at ${topic}.`,
        body_markdown: `## Why it matters\n\nAll about **${topic}**.\n\n- one\n- two\n`,
      });
    default:
      return undefined;
  }
}

/** Tokens as a rough tokenizer counts them: about 4 characters each, plus a few per message (OpenAI's framing). */
export const tokensOf = (text: string): number => Math.ceil(text.length / 4);

/** The `usage` OpenAI would report: the prompt's tokens and the answer's. */
const promptTokens = (body: ChatBody) => (body.messages ?? []).reduce((n, m) => n + 4 + tokensOf(m.content), 3);

function usageOf(body: ChatBody, content: string | null) {
  const prompt_tokens = promptTokens(body);
  const completion_tokens = tokensOf(content ?? '') + 1;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

function completion(body: ChatBody, content: string | null, finishReason = 'stop', refusal: string | null = null) {
  return {
    id: `chatcmpl-${Math.random().toString(36).slice(2, 12)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model ?? 'gpt-test',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal, annotations: [] },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage: usageOf(body, content),
    system_fingerprint: 'fp_fake',
  };
}

/**
 * OpenAI's tokens-per-minute, as it behaves: a request counts when it arrives, by its prompt's characters plus its
 * `max_completion_tokens` (`max_tokens`; 4096 when it names none); one that does not fit what the last `windowMs`
 * left is answered 429 at once and counts nothing. Once answered, a request counts the tokens its `usage` reports.
 * Every answer carries the `x-ratelimit-*-tokens` headers (and a 200 `openai-processing-ms`).
 */
function createTokenLimit(tpm: number, windowMs: number) {
  const log: Array<{ at: number; tokens: number }> = [];
  const used = (now: number) => log.reduce((n, e) => (e.at > now - windowMs ? n + e.tokens : n), 0);
  const headers = (now: number): Record<string, string> => {
    // Until the window is empty again ("resets to its initial state").
    const newest = log.at(-1);
    const resetMs = newest && newest.at > now - windowMs ? newest.at + windowMs - now : 0;
    return {
      'x-ratelimit-limit-tokens': String(tpm),
      'x-ratelimit-remaining-tokens': String(Math.max(0, tpm - used(now))),
      'x-ratelimit-reset-tokens': resetMs >= 1000 ? `${(resetMs / 1000).toFixed(3)}s` : `${resetMs}ms`,
    };
  };
  return {
    log,
    rejected: 0,
    /** The entry this request counts as, or the 429 headers when it does not fit. */
    admit(body: ChatBody & { max_completion_tokens?: number; max_tokens?: number }, now: number) {
      const estimate = promptTokens(body) + (body.max_completion_tokens ?? body.max_tokens ?? 4096);
      if (used(now) + estimate > tpm) {
        this.rejected++;
        return { ok: false as const, headers: headers(now) };
      }
      const entry = { at: now, tokens: estimate };
      log.push(entry);
      return { ok: true as const, entry, headers: () => headers(now) };
    },
    /** The most tokens counted in any window (ending at an arrival), with every request at its final count. */
    windowMax(): number {
      const upTo = (t: number) => log.reduce((n, e) => (e.at > t - windowMs && e.at <= t ? n + e.tokens : n), 0);
      return log.reduce((max, e) => Math.max(max, upTo(e.at)), 0);
    },
  };
}

/**
 * Starts the fake; with `apiKey`, any other bearer token gets OpenAI's 401; with `tpm`, its token limit holds; with
 * `cutAtMax`, an answer longer than the request's `max_completion_tokens` is cut there, as OpenAI does:
 * `finish_reason: length`, the content truncated, `completion_tokens` the maximum (paid for all the same).
 */
export async function startFakeOpenAi(
  opts: { apiKey?: string; tpm?: number; windowMs?: number; cutAtMax?: boolean } = {},
): Promise<FakeOpenAi> {
  let script: (req: RecordedRequest, index: number) => OpenAiReply | undefined = () => undefined;
  const queue: OpenAiReply[] = [];
  let count = 0;
  const tokens = opts.tpm ? createTokenLimit(opts.tpm, opts.windowMs ?? 60_000) : undefined;
  const server = await startRecordingServer((req) => {
    if (req.method !== 'POST' || req.path !== '/v1/chat/completions') {
      return apiError(404, 'invalid_request_error', 'unknown_url', `Unknown request URL: ${req.method} ${req.path}`);
    }
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return apiError(401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided: sk-wr***ng.');
    }
    const body = req.body as ChatBody;
    const admitted = tokens?.admit(body, req.at);
    if (admitted && !admitted.ok) {
      return apiError(
        429,
        'tokens',
        'rate_limit_exceeded',
        `Rate limit reached for gpt-test on tokens per min (TPM): Limit ${opts.tpm}.`,
        admitted.headers,
      );
    }
    const index = count++;
    const reply = queue.shift() ?? script(req, index) ?? {};
    if (isHttpReply(reply)) return reply;
    let content = reply.content === undefined ? normalContent(body) : reply.content;
    let finishReason = reply.finishReason;
    const max = (body as { max_completion_tokens?: number }).max_completion_tokens;
    if (opts.cutAtMax && max !== undefined && content && tokensOf(content) + 1 > max) {
      content = content.slice(0, 4 * (max - 1));
      finishReason = 'length';
    }
    if (content === undefined) {
      return apiError(
        400,
        'invalid_request_error',
        null,
        'response_format json_schema named blog_ideas or blog_article',
      );
    }
    const answer = completion(body, content, finishReason, reply.refusal ?? null);
    req.usage = answer.usage;
    req.finishReason = answer.choices[0]!.finish_reason;
    // The estimate is held while the request runs; the reported usage replaces it once answered.
    if (admitted?.ok) {
      const { entry } = admitted;
      setTimeout(() => (entry.tokens = answer.usage.total_tokens), reply.delayMs ?? 0);
    }
    return {
      status: 200,
      body: answer,
      // `openai-processing-ms`, as OpenAI sends it: from arrival to the answer (the timer may fire later: never more).
      headers: {
        'openai-processing-ms': String(reply.delayMs ?? 0),
        ...(admitted?.ok ? admitted.headers() : {}),
      },
      ...(reply.delayMs !== undefined ? { delayMs: reply.delayMs } : {}),
    };
  });
  return {
    url: `${server.url}/v1`,
    requests: server.requests,
    completions: () => server.requests.filter((r) => r.path === '/v1/chat/completions'),
    reported: () =>
      server.requests.reduce(
        (sum, r) => ({
          input: sum.input + (r.usage?.prompt_tokens ?? 0),
          output: sum.output + (r.usage?.completion_tokens ?? 0),
        }),
        { input: 0, output: 0 },
      ),
    maxInFlight: server.maxInFlight,
    tokenLimit: () => tokens && { rejected: tokens.rejected, windowMax: tokens.windowMax(), log: tokens.log },
    script: (fn) => void (script = fn),
    enqueue: (...replies) => void queue.push(...replies),
    close: server.close,
  };
}
