/**
 * The daily token budget per store, against the fake OpenAI: a store that has spent its budget starts no new OpenAI
 * call (the provider receives none for it), its blogs wait in PENDING with the reason in the API (never FAILED),
 * and another store goes on. The release at the next UTC day is checked on the budget itself with a moved clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime';
import { createStoreBudget } from '../../src/runtime/store.budget';
import type { FakeOpenAi } from '../support/fake.openai';
import { startOpenAiRuntime } from '../support/openai.runtime';

const BUDGET = 100;
let fake: FakeOpenAi;
let runtime: Runtime;
let stop: (() => Promise<void>) | undefined;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const get = async (url: string): Promise<Json> => (await runtime.http.inject({ method: 'GET', url })).json<Json>();
const create = (blogId: string, instanceId: string) =>
  runtime.http.inject({ method: 'POST', url: '/api/blogs', payload: { blogId, instanceId, idea: { title: blogId } } });

async function waitFor(blogId: string, status: string): Promise<Json> {
  for (let i = 0; i < 400; i++) {
    const blog = await get(`/api/blogs/${blogId}`);
    if (blog.status === status) return blog;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${blogId} never reached ${status}`);
}
const callsFor = (title: string) => fake.completions().filter((r) => JSON.stringify(r.body).includes(title)).length;

beforeAll(async () => {
  const started = await startOpenAiRuntime({ INKWELL_STORE_DAILY_TOKENS: String(BUDGET) });
  ({ runtime, fake, stop } = started);
}, 60_000);

afterAll(() => stop?.());

describe('daily token budget per store', () => {
  it('a store over its budget waits in PENDING, says why, calls nothing; another store goes on', async () => {
    expect((await create('first-a', 'shop-a')).statusCode).toBe(202);
    const first = await waitFor('first-a', 'DONE');
    expect(first.usage.inputTokens + first.usage.outputTokens).toBeGreaterThanOrEqual(BUDGET);

    expect((await create('second-a', 'shop-a')).statusCode).toBe(202);
    expect((await create('first-b', 'shop-b')).statusCode).toBe(202);
    await waitFor('first-b', 'DONE');
    await new Promise((r) => setTimeout(r, 500));
    const waiting = await get('/api/blogs/second-a');
    expect(waiting.status).toBe('PENDING');
    expect(waiting.waiting).toMatchObject({ reason: 'STORE_DAILY_BUDGET', until: expect.stringMatching(/T00:00:00/) });
    expect(callsFor('second-a')).toBe(0);
    expect(callsFor('first-b')).toBe(1);
    // A blog that does not wait says nothing of it.
    expect((await get('/api/blogs/first-b')).waiting).toBeUndefined();
  });
});

describe('the budget itself', () => {
  it('holds a store until the next UTC day, then lets it go; other stores never wait', async () => {
    let clock = Date.parse('2026-03-01T23:59:59.000Z');
    const spent: Record<string, number> = { '2026-03-01': 500 };
    const budget = createStoreBudget({
      dailyTokens: 400,
      ledger: {
        tokensToday: (instanceId) =>
          Promise.resolve(instanceId === 'big' ? (spent[new Date(clock).toISOString().slice(0, 10)] ?? 0) : 0),
      },
      now: () => clock,
      recheckMs: 20,
    });
    await budget.wait('small'); // resolves at once
    expect(await budget.blocked('big')).toMatchObject({ until: '2026-03-02T00:00:00.000Z' });
    let released = false;
    const waiting = budget.wait('big').then(() => (released = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(released).toBe(false);
    clock = Date.parse('2026-03-02T00:00:01.000Z');
    await waiting;
    expect(released).toBe(true);
    expect(await budget.blocked('big')).toBeUndefined();
  });
});
