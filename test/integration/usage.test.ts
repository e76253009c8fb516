/**
 * Spend per blog and per store, against the fake OpenAI (which reports `usage` as OpenAI does): every token the
 * provider reported is counted once, on the blog that spent it (failed attempts and retries included), in its
 * store's day, in `/metrics`, and with the DONE and FAILED events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime';
import { openAiReplies, type FakeOpenAi, type RecordedRequest } from '../support/fake.openai';
import { startOpenAiRuntime } from '../support/openai.runtime';

let fake: FakeOpenAi;
let runtime: Runtime;
let stop: (() => Promise<void>) | undefined;
const events: Array<Record<string, unknown>> = [];

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const get = async (url: string): Promise<Json> => (await runtime.http.inject({ method: 'GET', url })).json<Json>();
const post = (body: unknown) => runtime.http.inject({ method: 'POST', url: '/api/blogs', payload: body as object });

async function waitFor(blogId: string, statuses: string[]): Promise<Json> {
  for (let i = 0; i < 400; i++) {
    const blog = await get(`/api/blogs/${blogId}`);
    if (statuses.includes(blog.status as string)) return blog;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${blogId} never reached ${statuses.join('/')}`);
}

/** What the fake reported for the requests whose prompt mentions `marker`. */
function reportedFor(marker: string) {
  const mine = fake.completions().filter((r: RecordedRequest) => JSON.stringify(r.body).includes(marker));
  return {
    inputTokens: mine.reduce((n, r) => n + (r.usage?.prompt_tokens ?? 0), 0),
    outputTokens: mine.reduce((n, r) => n + (r.usage?.completion_tokens ?? 0), 0),
    calls: mine.length,
  };
}

beforeAll(async () => {
  const started = await startOpenAiRuntime({ INKWELL_RETRY_BASE_MS: '10', INKWELL_MAX_ATTEMPTS: '3' });
  ({ runtime, fake, stop } = started);
  runtime.bus.subscribe(runtime.subjects.allEvents, (m) =>
    events.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>),
  );
}, 60_000);

afterAll(() => stop?.());

describe('usage: what the provider reported, counted once per blog, store, day and metric', () => {
  it('counts every answer, a cut-off one that was retried and a refused one that failed included', async () => {
    // Answers are scripted by the topic in the prompt: the article of "cut-marker" is cut off once (retried), the
    // article of "refused-marker" is refused (FAILED); both were paid for all the same.
    let cut = 0;
    fake.script((req) => {
      const text = JSON.stringify(req.body);
      if (!text.includes('blog_article')) return undefined;
      if (text.includes('cut-marker') && cut++ === 0) return openAiReplies.truncated();
      if (text.includes('refused-marker')) return openAiReplies.refusal();
      return undefined;
    });
    const blogs = [
      { blogId: 'u-ok', instanceId: 'store-a', idea: { title: 'ok-marker tea' } },
      { blogId: 'u-cut', instanceId: 'store-a', idea: { title: 'cut-marker coffee' } },
      { blogId: 'u-refused', instanceId: 'store-b', idea: { title: 'refused-marker cocoa' } },
    ];
    for (const b of blogs) expect((await post(b)).statusCode).toBe(202);
    const ok = await waitFor('u-ok', ['DONE']);
    const cutBlog = await waitFor('u-cut', ['DONE']);
    const refused = await waitFor('u-refused', ['FAILED']);

    const expected = (marker: string) => {
      const r = reportedFor(marker);
      return { inputTokens: r.inputTokens, outputTokens: r.outputTokens, images: 0 };
    };
    expect(reportedFor('cut-marker').calls).toBe(2);
    expect(expected('ok-marker').inputTokens).toBeGreaterThan(50);
    expect(ok.usage).toEqual(expected('ok-marker'));
    expect(cutBlog.usage).toEqual(expected('cut-marker'));
    expect(refused.usage).toEqual(expected('refused-marker'));
    expect(refused.usage.outputTokens).toBeGreaterThan(0);

    // The DONE and FAILED events carry the same totals; other events carry none.
    await runtime.supervisor.flush();
    await new Promise((r) => setTimeout(r, 200));
    const final = (blogId: string, status: string) => events.find((e) => e.blogId === blogId && e.status === status);
    expect(final('u-ok', 'DONE')?.usage).toEqual(ok.usage);
    expect(final('u-cut', 'DONE')?.usage).toEqual(cutBlog.usage);
    expect(final('u-refused', 'FAILED')?.usage).toEqual(refused.usage);
    expect(events.filter((e) => e.status === 'GENERATING_CONTENT').every((e) => e.usage === undefined)).toBe(true);

    // Per store and UTC day: the sums of its blogs.
    const today = new Date().toISOString().slice(0, 10);
    const a = await get(`/api/stores/store-a/usage?from=${today}&to=${today}`);
    expect(a).toMatchObject({
      instanceId: 'store-a',
      days: [
        {
          day: today,
          inputTokens: ok.usage.inputTokens + cutBlog.usage.inputTokens,
          outputTokens: ok.usage.outputTokens + cutBlog.usage.outputTokens,
          images: 0,
        },
      ],
    });
    // gpt-4o-mini list prices by default: $0.15 / $0.60 per million tokens.
    const cost = (a.days[0].inputTokens * 0.15 + a.days[0].outputTokens * 0.6) / 1e6;
    expect(a.days[0].estimatedCostUsd).toBeCloseTo(cost, 6);
    const b = await get(`/api/stores/store-b/usage`);
    expect(b.days).toEqual([expect.objectContaining({ day: today, ...refused.usage })]);
    expect((await get(`/api/stores/store-c/usage?from=2020-01-01&to=2020-01-31`)).days).toEqual([]);
    const bad = await runtime.http.inject({ method: 'GET', url: '/api/stores/store-a/usage?from=yesterday' });
    expect(bad.statusCode).toBe(400);

    // Metrics: tokens by stage and kind add up to everything the provider reported.
    const text = (await runtime.http.inject({ method: 'GET', url: '/metrics' })).body;
    const metric = (stage: string, kind: string) =>
      Number(new RegExp(`inkwell_tokens_total\\{stage="${stage}",kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const all = fake.reported();
    expect(metric('article', 'input')).toBe(all.input);
    expect(metric('article', 'output')).toBe(all.output);
    expect(text).toMatch(/inkwell_images_total 0/);
  });
});
