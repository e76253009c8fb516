/**
 * The real providers end to end (needs PostgreSQL): the runtime with the real OpenAI SDK, the Replicate HTTP
 * adapter and the Wix client, talking to local fakes of the public APIs. Faults are injected; every blog still
 * finishes, the limits the servers see are never exceeded, each blog is published once, failures end in FAILED
 * with a clear reason and a retry finishes them, and a flooding store does not hold back small ones.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';
import { openAiReplies, startFakeOpenAi, type FakeOpenAi } from '../support/fake.openai';
import { replicateReplies, startFakeReplicate, type FakeReplicate } from '../support/fake.replicate';
import { startFakeWix, type FakeWix } from '../support/fake.wix';
import { describeWithPostgres, requirePostgres, type PostgresHandle } from '../support/servers';

interface World {
  runtime: Runtime;
  openai: FakeOpenAi;
  replicate: FakeReplicate;
  wix: FakeWix;
  dataDir: string;
  db: PostgresHandle;
}
const worlds: World[] = [];

async function startWorld(env: Record<string, string>, withImagesAndWix = true): Promise<World> {
  const [openai, replicate, wix, db] = await Promise.all([
    startFakeOpenAi({ apiKey: 'sk-e2e' }),
    startFakeReplicate({ token: 'r8-e2e' }),
    startFakeWix(),
    requirePostgres(),
  ]);
  replicate.plan({ polls: 0, status: 'succeeded' });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-e2e-'));
  const config = loadConfig({
    DATABASE_URL: db!.url,
    INKWELL_DATA_DIR: dataDir,
    INKWELL_LOG_LEVEL: 'silent',
    OPENAI_API_KEY: 'sk-e2e',
    OPENAI_BASE_URL: openai.url,
    ...(withImagesAndWix
      ? {
          REPLICATE_API_TOKEN: 'r8-e2e',
          REPLICATE_BASE_URL: replicate.url,
          REPLICATE_MODEL: 'acme/painter',
          WIX_APP_ID: wix.appId,
          WIX_APP_SECRET: wix.appSecret,
          WIX_BASE_URL: wix.url,
          WIX_DEFAULT_MEMBER_ID: 'member-1',
        }
      : {}),
    INKWELL_RETRY_BASE_MS: '200',
    ...env,
  });
  const { runtime } = await composeRuntime({ config });
  await runtime.start(false);
  const world = { runtime, openai, replicate, wix, dataDir, db: db! };
  worlds.push(world);
  return world;
}

async function create(w: World, body: Record<string, unknown>) {
  const res = await w.runtime.http.inject({ method: 'POST', url: '/api/blogs', payload: body });
  expect(res.statusCode, res.body).toBe(202);
}

/** Waits until every listed blog is in `status`, selecting the first idea of any that awaits one. */
async function settle(w: World, blogIds: string[], status: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await Promise.all(blogIds.map((id) => w.runtime.repo.get(id)));
    for (const row of rows) {
      if (row?.status === 'AWAITING_SELECTION') {
        await w.runtime.intake.apply('select', { blogId: row.blogId, instanceId: row.instanceId, ideaIndex: 0 });
      }
    }
    if (rows.every((r) => r?.status === status)) return rows;
    if (Date.now() > deadline)
      throw new Error(`not all ${status}: ${rows.map((r) => `${r?.blogId}=${r?.status}`).join(' ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Most requests started within any `windowMs`. */
function maxStartsInWindow(starts: number[], windowMs: number): number {
  const s = [...starts].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i]! - s[j]! >= windowMs) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}

afterEach(async () => {
  for (const w of worlds.splice(0)) {
    await w.runtime.stop();
    await Promise.all([w.openai.close(), w.replicate.close(), w.wix.close()]);
    await w.db.drop();
    await rm(w.dataDir, { recursive: true, force: true });
  }
});

await describeWithPostgres('real providers against local fakes (needs PostgreSQL)', () => {
  it('finishes every blog through 429s, 5xx, slow answers and timeouts, within the concurrency and per-minute limits', async () => {
    const w = await startWorld({
      INKWELL_OPENAI_CONCURRENCY: '2',
      INKWELL_OPENAI_RPM: '8',
      INKWELL_REPLICATE_CONCURRENCY: '1',
      INKWELL_WIX_CONCURRENCY: '1',
      INKWELL_MAX_ATTEMPTS: '6',
      INKWELL_PROVIDER_TIMEOUT_MS: '2000',
    });
    // A hang is cut by INKWELL_PROVIDER_TIMEOUT_MS (2 s here) and retried like any timeout.
    w.openai.enqueue(
      openAiReplies.rateLimited({ 'retry-after': '1' }),
      openAiReplies.status(500),
      openAiReplies.slow(1500),
      openAiReplies.hang(),
    );
    w.replicate.enqueue(replicateReplies.status(503), replicateReplies.rateLimited(1));
    w.wix.fault({ kind: 'status', status: 429, retryAfter: '1', method: 'POST', path: '/blog/v3/draft-posts' });
    w.wix.fault({ kind: 'status', status: 500, method: 'POST', path: /\/publish$/ });
    w.wix.fault({ kind: 'slow', delayMs: 800, path: '/oauth2/token' });
    w.wix.fault({ kind: 'slow', delayMs: 5000, method: 'POST', path: '/site-media/v1/files/import' });
    const blogs = Array.from({ length: 6 }, (_, i) => `e2e-${i}`);
    for (const [i, blogId] of blogs.entries()) {
      const store = `shop-${i % 2}`;
      await create(
        w,
        i === 5
          ? { blogId, instanceId: store, topic: 'winter tea' }
          : { blogId, instanceId: store, idea: { title: `Tea ${i}` } },
      );
    }
    // 5 articles + ideas + 1 article + 3 failed answers = 10 OpenAI calls at 8 per minute: the limiter must wait.
    await settle(w, blogs, 'DONE', 150_000);

    const chatStarts = w.openai.completions().map((r) => r.at);
    console.log(
      `[e2e] OpenAI: ${chatStarts.length} calls, max in flight ${w.openai.maxInFlight()}, most in a minute ${maxStartsInWindow(chatStarts, 60_000)}`,
    );
    expect(chatStarts.length).toBeGreaterThanOrEqual(10);
    // The ninth call waited for the first to leave the 60 s window (50 ms allowed for the trip to the server).
    expect(Math.max(...chatStarts) - Math.min(...chatStarts)).toBeGreaterThanOrEqual(60_000 - 50);
    expect(w.openai.maxInFlight()).toBeLessThanOrEqual(2);
    expect(maxStartsInWindow(chatStarts, 60_000 - 50)).toBeLessThanOrEqual(8);
    expect(w.replicate.maxInFlight()).toBeLessThanOrEqual(1);
    for (const store of ['shop-0', 'shop-1']) {
      expect(w.wix.maxInFlight(store)).toBeLessThanOrEqual(1);
      // Exactly one published post per blog of the store, retries and all, and one draft created per blog: no
      // publish attempt created a second post that the store would keep as a draft.
      expect(w.wix.posts(store)).toHaveLength(3);
      expect(w.wix.drafts(store)).toHaveLength(3);
    }
    for (const blogId of blogs)
      expect((await w.runtime.repo.get(blogId))!.view).toMatchObject({ post: { id: expect.any(String) } });
  }, 200_000);

  it('retries a failed prediction with a new one; fails on a non-retryable OpenAI error and a canceled prediction with a clear reason, and retry finishes both', async () => {
    const w = await startWorld({ INKWELL_MAX_ATTEMPTS: '3' });
    w.openai.enqueue(openAiReplies.insufficientQuota());
    await create(w, { blogId: 'quota', instanceId: 'shop-q', idea: { title: 'Quota' } });
    const [quota] = await settle(w, ['quota'], 'FAILED', 30_000);
    expect(quota!.view).toMatchObject({ error: { stage: 'GENERATING_CONTENT', code: 'QUOTA_EXHAUSTED', attempts: 1 } });

    // A prediction that ends `failed` is tried again with a new prediction, as the next attempt.
    w.replicate.plan({ polls: 1, status: 'failed', error: 'CUDA out of memory. Try running it again.' });
    await create(w, { blogId: 'repainted', instanceId: 'shop-q', idea: { title: 'Repaint' } });
    for (let i = 0; i < 300 && w.replicate.creates().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    w.replicate.plan({ polls: 0, status: 'succeeded' });
    await settle(w, ['repainted'], 'DONE', 30_000);
    expect(w.replicate.creates()).toHaveLength(2);

    // One that ends `canceled` was stopped on purpose: the blog fails at once, with the reason.
    w.replicate.plan({ polls: 1, status: 'canceled' });
    await create(w, { blogId: 'painted', instanceId: 'shop-q', idea: { title: 'Paint' } });
    const [painted] = await settle(w, ['painted'], 'FAILED', 30_000);
    expect(painted!.view).toMatchObject({
      error: { stage: 'GENERATING_IMAGE', code: 'PREDICTION_FAILED', attempts: 1 },
    });
    expect(JSON.stringify(painted!.view)).toContain('canceled');

    // A retryable failure uses up its attempts before FAILED.
    w.openai.enqueue(openAiReplies.status(500), openAiReplies.status(502), openAiReplies.status(503));
    await create(w, { blogId: 'flaky', instanceId: 'shop-q', idea: { title: 'Flaky' } });
    const [flaky] = await settle(w, ['flaky'], 'FAILED', 30_000);
    expect(flaky!.view).toMatchObject({
      error: { stage: 'GENERATING_CONTENT', code: 'OPENAI_UNAVAILABLE', attempts: 3 },
    });

    w.replicate.plan({ polls: 0, status: 'succeeded' });
    for (const blogId of ['quota', 'painted', 'flaky'])
      await w.runtime.intake.apply('retry', { blogId, instanceId: 'shop-q' });
    await settle(w, ['quota', 'painted', 'flaky'], 'DONE', 60_000);
    expect(w.wix.posts('shop-q')).toHaveLength(4);
    // repainted: one failed prediction and one new one; painted: one canceled, one new one after the retry.
    expect(w.replicate.creates().length).toBe(6);
  }, 120_000);

  it('is fair: a store flooding 200 blogs does not hold back five stores sending three each', async () => {
    const w = await startWorld(
      { INKWELL_OPENAI_CONCURRENCY: '4', INKWELL_OPENAI_RPM: '100000', INKWELL_MAX_ACTIVE_PER_STORE: '500' },
      false,
    );
    w.openai.script(() => openAiReplies.slow(40));
    const flood = Array.from({ length: 200 }, (_, i) => `flood-${i}`);
    const started = Date.now();
    await Promise.all(
      flood.map((blogId) => create(w, { blogId, instanceId: 'big-store', idea: { title: `Flood ${blogId}` } })),
    );
    const small = Array.from({ length: 15 }, (_, i) => `small-${i}`);
    const smallAt = Date.now();
    for (const [i, blogId] of small.entries())
      await create(w, { blogId, instanceId: `small-${i % 5}`, idea: { title: `Small ${i}` } });
    await settle(w, small, 'DONE', 60_000);
    const smallMs = Date.now() - smallAt;
    const floodDoneBySmall = (await Promise.all(flood.map((id) => w.runtime.repo.get(id)))).filter(
      (r) => r?.status === 'DONE',
    ).length;
    await settle(w, flood, 'DONE', 120_000);
    const floodMs = Date.now() - started;
    console.log(
      `[e2e] fairness: the 15 small blogs finished ${smallMs} ms after they were sent; the flood took ${floodMs} ms; ${floodDoneBySmall}/200 flood blogs were done by then`,
    );
    expect(smallMs).toBeLessThan(floodMs * 0.35);
  }, 200_000);
});
