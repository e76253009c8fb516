/**
 * The remote services of the real-path benchmark, in a process of their own: the test fakes of OpenAI, Replicate
 * and Wix (test/support) answering after fixed times, as a new user would set them up to try Inkwell. Prints one
 * JSON line with their URLs, then serves `GET /requests` on a control port: every request each fake received,
 * with when it arrived and when it was answered (the fakes' own log, counted where the provider is).
 *
 * Args: --article-ms, --ideas-ms (OpenAI), --image-ms (a prediction's run; `Prefer: wait` honoured), --wix-ms
 * (every Wix call). With --workload, OpenAI, Replicate and the Wix draft create answer after the blog's own stage
 * time instead (`stageTime` of the latency-bound scenario), the blog named by the `[<blogId>]` tag its topic or
 * title carries through every prompt and title; the other Wix calls answer at once.
 *
 * With --openai-tpm, the fake OpenAI enforces that many tokens per 60 s as OpenAI counts them (fake.openai.ts) and
 * cuts answers at `max_completion_tokens`; with --article-tokens, articles are that many completion tokens at the
 * median, each answer's length drawn from a log-normal of spread --article-spread (σ), seeded by the blog (the
 * `[tk-…]` tag of its title) and the request, so runs repeat. `GET /openai` then serves the fake's token count and
 * every chat request: its blog, interval, `usage`, `finish_reason` and `max_completion_tokens`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { startFakeOpenAi } from '../../test/support/fake.openai';
import { startFakeReplicate } from '../../test/support/fake.replicate';
import { startFakeWix } from '../../test/support/fake.wix';
import { FAKE_KEYS } from './fake.keys';
import { stageTime, type Stage } from './sim';

const { values } = parseArgs({
  options: {
    'article-ms': { type: 'string', default: '300' },
    'ideas-ms': { type: 'string', default: '300' },
    'image-ms': { type: 'string', default: '120' },
    'wix-ms': { type: 'string', default: '5' },
    workload: { type: 'boolean', default: false },
    'openai-tpm': { type: 'string' },
    'article-tokens': { type: 'string' },
    'article-spread': { type: 'string', default: '0' },
  },
});
const ms = (name: keyof typeof values) => Number(values[name]);

/** With --workload: the stage time of the blog tagged in `text` (its seed is its id's prefix), else `fixed`. */
const timeOf = (stage: Stage, text: unknown, fixed: number): number => {
  if (!values.workload) return fixed;
  const blogId = /\[([\w-]+-b\d+)\]/.exec(JSON.stringify(text ?? ''))?.[1];
  return blogId ? stageTime(blogId.slice(0, blogId.lastIndexOf('-b')), blogId, stage) : fixed;
};
const isDraftCreate = (path: string) => path === '/blog/v3/draft-posts';

const [openai, replicate, wix] = await Promise.all([
  startFakeOpenAi({
    apiKey: FAKE_KEYS.openai,
    ...(values['openai-tpm'] ? { tpm: Number(values['openai-tpm']), cutAtMax: true } : {}),
  }),
  startFakeReplicate({ token: FAKE_KEYS.replicate, runMs: (req) => timeOf('image', req.body, ms('image-ms')) }),
  startFakeWix({
    appId: FAKE_KEYS.wixAppId,
    appSecret: FAKE_KEYS.wixSecret,
    latencyMs: (path, body) =>
      values.workload ? (isDraftCreate(path) ? timeOf('publish', body, 0) : 0) : ms('wix-ms'),
  }),
]);
/** The `[tk-…]` tag of the blog a request is for (token benchmark), if any. */
const blogOf = (messages: unknown) => /\[(tk-[\w-]+)\]/.exec(JSON.stringify(messages ?? ''))?.[1];
/** A number in [0, 1) from a string (FNV-1a), for seeded draws. */
const unit = (s: string) => {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return ((h >>> 0) + 0.5) / 2 ** 32;
};
const asked = new Map<string, number>();
/** An article of about `tokens` completion tokens (fake.openai.ts counts 4 characters a token). */
const articleOf = (tokens: number) => {
  const head = JSON.stringify({ title: 'Green tea, brewed right', excerpt: 'Leaves, water, time.', body_markdown: '' });
  const line = 'Water just off the boil scorches green tea; let it rest a minute. ';
  const body = `## Why it matters\n\n${line.repeat(Math.ceil((4 * tokens) / line.length))}`;
  return JSON.stringify({ ...(JSON.parse(head) as object), body_markdown: body.slice(0, 4 * tokens - head.length) });
};
openai.script((req) => {
  const body = req.body as { response_format?: { json_schema?: { name?: string } }; messages?: unknown };
  const ideas = body.response_format?.json_schema?.name === 'blog_ideas';
  const median = Number(values['article-tokens'] ?? NaN);
  const blog = blogOf(body.messages);
  let content: string | undefined;
  if (!ideas && Number.isFinite(median) && blog) {
    const n = (asked.get(blog) ?? 0) + 1;
    asked.set(blog, n);
    // Box-Muller from two seeded uniforms: one draw per blog and request.
    const z = Math.sqrt(-2 * Math.log(unit(`${blog}/${n}/a`))) * Math.cos(2 * Math.PI * unit(`${blog}/${n}/b`));
    content = articleOf(Math.round(median * Math.exp(Number(values['article-spread']) * z)));
  }
  return {
    delayMs: ideas
      ? timeOf('ideas', body.messages, ms('ideas-ms'))
      : timeOf('article', body.messages, ms('article-ms')),
    ...(content !== undefined ? { content } : {}),
  };
});

/** One request as a line of the log: which service, what, and its interval in epoch ms. */
type Logged = { service: string; method: string; path: string; at: number; endedAt: number | null };
const log = (): Logged[] => [
  ...openai.requests.map((r) => ({
    service: 'openai',
    method: r.method,
    path: r.path,
    at: r.at,
    endedAt: r.endedAt ?? null,
  })),
  ...replicate.requests.map((r) => ({
    service: 'replicate',
    method: r.method,
    path: r.path,
    at: r.at,
    endedAt: r.endedAt ?? null,
  })),
  ...wix.requests.map((r) => ({
    service: 'wix',
    method: r.method,
    path: r.path,
    at: r.startedAt,
    endedAt: r.endedAt ?? null,
  })),
];

const control = createServer((req, res) => {
  if (req.url === '/requests') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(log()));
  } else if (req.url === '/openai') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        tokenLimit: openai.tokenLimit() ?? null,
        calls: openai.completions().map((r) => ({
          blog: blogOf((r.body as { messages?: unknown } | undefined)?.messages) ?? null,
          at: r.at,
          endedAt: r.endedAt ?? null,
          usage: r.usage ?? null,
          finishReason: r.finishReason ?? null,
          maxCompletion: (r.body as { max_completion_tokens?: number } | undefined)?.max_completion_tokens ?? null,
        })),
      }),
    );
  } else if (req.url === '/reset' && req.method === 'POST') {
    openai.requests.length = 0;
    replicate.requests.length = 0;
    wix.requests.length = 0;
    res.writeHead(204).end();
  } else res.writeHead(404).end();
});
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
console.log(
  JSON.stringify({
    fakes: 'ready',
    openai: openai.url,
    replicate: replicate.url,
    wix: wix.url,
    control: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
  }),
);
process.on('SIGTERM', () => process.exit(0));
