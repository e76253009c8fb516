import Replicate from 'replicate';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Article } from '../../machines/blog.types';
import { StageFailureError } from '../../src/errors';
import type { ImageCall } from '../../src/providers/image.port';
import type { ProviderRefs } from '../../src/db/refs.port';
import {
  createReplicateImages,
  PREDICTION_REF,
  type ReplicateImagesOptions,
} from '../../src/providers/replicate.images';
import { createPredictionWaiters } from '../../src/providers/replicate.webhooks';
import { replicateReplies, startFakeReplicate, type FakeReplicate } from '../support/fake.replicate';

const TOKEN = 'r8_test_token_0123456789';
const article: Article = {
  title: 'Sourdough for beginners',
  excerpt: 'A first loaf, step by step.',
  markdown: '',
  html: '',
};

/** In-memory refs that also log every put, in order. */
function memoryRefs() {
  const values = new Map<string, string>();
  const puts: { key: string; value: string; at: number }[] = [];
  const refs: ProviderRefs = {
    get: async (blogId, key) => values.get(`${blogId}|${key}`),
    put: async ({ blogId }, key, value) => {
      puts.push({ key, value, at: Date.now() });
      values.set(`${blogId}|${key}`, value);
    },
  };
  return { refs, values, puts, stored: (blogId = 'blog-1') => values.get(`${blogId}|${PREDICTION_REF}`) };
}

function callFor(signal = new AbortController().signal, blogId = 'blog-1'): ImageCall {
  return { blogId, instanceId: 'store-1', request: { topic: 'bread', keywords: [] }, article, attempt: 1, signal };
}

async function failureOf(promise: Promise<unknown>): Promise<StageFailureError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StageFailureError);
  return error as StageFailureError;
}

let fake: FakeReplicate;
let memory: ReturnType<typeof memoryRefs>;
const imagesFor = (more: Partial<ReplicateImagesOptions> = {}) =>
  createReplicateImages({
    token: TOKEN,
    baseUrl: fake.url,
    model: 'black-forest-labs/flux-schnell',
    refs: memory.refs,
    pollIntervalMs: 20,
    deadlineMs: 2000,
    waitSeconds: 1,
    ...more,
  });

beforeAll(async () => {
  fake = await startFakeReplicate({ token: TOKEN });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
  fake.predictions.clear();
  fake.plan({ polls: 2, status: 'succeeded', output: undefined, error: undefined });
  fake.script(() => undefined);
  memory = memoryRefs();
});

describe('replicate images against a fake Replicate server', () => {
  it('creates one prediction with a bounded wait, polls it and returns its first output URL', async () => {
    const image = await imagesFor().createHeaderImage(callFor());
    const [create] = fake.creates();
    expect(create?.path).toBe('/v1/models/black-forest-labs/flux-schnell/predictions');
    expect(create?.headers.prefer).toBe('wait=1');
    expect(create?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect((create?.body as { input: { prompt: string } }).input.prompt).toContain('Sourdough for beginners');
    const id = [...fake.predictions.keys()][0];
    expect(image).toEqual({
      url: `https://replicate.delivery/fake/${id}/out-0.webp`,
      alt: expect.stringContaining('Sourdough'),
    });
    expect(fake.polls()).toHaveLength(2);
  });

  it('creates with a version on POST /predictions when the model names one', async () => {
    fake.plan({ polls: 0, output: 'https://replicate.delivery/fake/single.png' });
    const image = await imagesFor({ model: 'stability-ai/sdxl:abc123' }).createHeaderImage(callFor());
    expect(image.url).toBe('https://replicate.delivery/fake/single.png');
    expect(fake.creates()[0]?.path).toBe('/v1/predictions');
    expect((fake.creates()[0]?.body as { version: string }).version).toBe('abc123');
    expect(fake.polls()).toHaveLength(0);
  });

  it('stores the prediction id at once, before polling completes', async () => {
    fake.plan({ polls: 5 });
    await imagesFor().createHeaderImage(callFor());
    const id = [...fake.predictions.keys()][0];
    expect(memory.puts[0]).toMatchObject({ key: PREDICTION_REF, value: id });
    const firstPoll = fake.polls()[0];
    expect(memory.puts[0]!.at).toBeLessThanOrEqual(firstPoll!.at);
  });

  it('after a restart, polls the stored prediction and creates no new one', async () => {
    fake.plan({ polls: 1000 });
    const first = await failureOf(imagesFor({ deadlineMs: 150 }).createHeaderImage(callFor()));
    expect(first).toMatchObject({ code: 'PREDICTION_TIMEOUT', retryable: true });
    const id = memory.stored();
    expect(id).toBeTruthy();
    fake.predictions.get(id!)!.plan.polls = 0; // it finishes while "the process is down"
    const image = await imagesFor().createHeaderImage(callFor()); // a new adapter, same refs
    expect(image.url).toContain(id);
    expect(fake.creates()).toHaveLength(1);
  });

  it('passes the create through the limit, keyed by store, and only the create', async () => {
    const seen: string[] = [];
    await imagesFor({ limit: (instanceId, fn) => (seen.push(instanceId), fn()) }).createHeaderImage(callFor());
    expect(seen).toEqual(['store-1']);
  });

  // Issue 20: a delivery of a prediction still running (as the fake once sent when its timer fired a few ms early)
  // was kept and answered every later wait at once: the wait spun on it, starving timers and I/O of the whole
  // process until the deadline (150 s in production), then failed the stage.
  it('with webhooks, a delivered prediction still running neither ends nor spins the wait; the finished one ends it', async () => {
    fake.plan({ polls: 1000 });
    const waiters = createPredictionWaiters();
    const images = imagesFor({ pollIntervalMs: 1000, deadlineMs: 3000, webhook: { url: 'http://x/hooks', waiters } });
    const pending = images.createHeaderImage(callFor());
    pending.catch(() => undefined); // awaited below; not unhandled if an assertion fails first
    const id = await (async () => {
      for (let i = 0; i < 200 && !memory.stored(); i++) await new Promise((r) => setTimeout(r, 5));
      return memory.stored()!;
    })();
    waiters.deliver({ id, status: 'processing' });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(ticker);
    expect(ticks).toBeGreaterThanOrEqual(10); // the event loop kept turning
    const sentAt = Date.now();
    waiters.deliver({ id, status: 'succeeded', output: [`https://replicate.delivery/x/${id}.webp`] });
    const image = await pending;
    expect(Date.now() - sentAt).toBeLessThan(100);
    expect(image.url).toContain(id);
    expect(fake.polls()).toHaveLength(0);
  });
});

describe('replicate images failures', () => {
  it.each([
    ['failed', true],
    ['canceled', false],
    ['aborted', false],
  ] as const)(
    'a %s prediction fails (retryable: %s) and clears the ref, so the next attempt creates a fresh one',
    async (status, retryable) => {
      fake.plan({ status, error: status === 'failed' ? 'NSFW content detected' : undefined });
      const failure = await failureOf(imagesFor().createHeaderImage(callFor()));
      expect(failure).toMatchObject({ code: 'PREDICTION_FAILED', retryable });
      expect(failure.message).toContain(status);
      if (status === 'failed') expect(failure.message).toContain('NSFW content detected');
      expect(memory.stored()).toBe('');
      fake.plan({ status: 'succeeded' });
      await imagesFor().createHeaderImage(callFor());
      expect(fake.creates()).toHaveLength(2);
    },
  );

  it('maps a 429 on create to RATE_LIMITED with Retry-After, tried once', async () => {
    fake.enqueue(replicateReplies.rateLimited(4));
    const failure = await failureOf(imagesFor().createHeaderImage(callFor()));
    expect(failure).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: 4000 });
    expect(fake.creates()).toHaveLength(1);
    expect(memory.stored()).toBeUndefined();
  });

  it.each([
    [500, 'REPLICATE_UNAVAILABLE', true],
    [503, 'REPLICATE_UNAVAILABLE', true],
    [401, 'REPLICATE_AUTH', false],
    [402, 'REPLICATE_PAYMENT_REQUIRED', false],
    [422, 'REPLICATE_INVALID_INPUT', false],
    [404, 'REPLICATE_NOT_FOUND', false],
  ])('maps HTTP %i on create to %s (retryable %s), tried exactly once', async (status, code, retryable) => {
    fake.enqueue(replicateReplies.status(status, 'detail from replicate'));
    const failure = await failureOf(imagesFor().createHeaderImage(callFor()));
    expect(failure).toMatchObject({ code, retryable });
    expect(failure.message).toContain('detail from replicate');
    expect(failure.message).not.toContain(TOKEN);
    expect(fake.creates()).toHaveLength(1);
  });

  it('a dropped connection on create is retryable and the POST is not repeated', async () => {
    fake.enqueue(replicateReplies.drop());
    const failure = await failureOf(imagesFor().createHeaderImage(callFor()));
    expect(failure).toMatchObject({ code: 'REPLICATE_UNAVAILABLE', retryable: true });
    expect(fake.creates()).toHaveLength(1);
  });

  it('keeps polling through a transient poll error', async () => {
    fake.script((req) =>
      req.method === 'GET' && fake.polls().length === 1 ? replicateReplies.status(502) : undefined,
    );
    const image = await imagesFor().createHeaderImage(callFor());
    expect(image.url).toMatch(/^https:\/\/replicate\.delivery\//);
    expect(fake.polls()).toHaveLength(3);
  });

  it('forgets a stored prediction Replicate no longer knows, and creates a fresh one', async () => {
    await memory.refs.put({ blogId: 'blog-1', instanceId: 'store-1' }, PREDICTION_REF, 'gone-id');
    await imagesFor().createHeaderImage(callFor());
    expect(fake.creates()).toHaveLength(1);
    expect(memory.stored()).toBe([...fake.predictions.keys()][0]);
  });

  it('does not reuse a success whose output has expired (older than about an hour)', async () => {
    fake.plan({ polls: 0 });
    await imagesFor().createHeaderImage(callFor());
    fake.predictions.get(memory.stored()!)!.completed_at = new Date(Date.now() - 2 * 3600_000).toISOString();
    await imagesFor().createHeaderImage(callFor());
    expect(fake.creates()).toHaveLength(2);
  });

  it('stops at once when the call is aborted while polling, keeping the ref', async () => {
    fake.plan({ polls: 1000 });
    const controller = new AbortController();
    const pending = imagesFor().createHeaderImage(callFor(controller.signal));
    setTimeout(() => controller.abort(), 100);
    expect(await failureOf(pending)).toMatchObject({ code: 'ABORTED', retryable: false });
    expect(memory.stored()).toBeTruthy();
  });

  it('a create slower than the request timeout fails retryably, tried once', async () => {
    fake.enqueue(replicateReplies.slow(replicateReplies.status(201), 3000));
    const started = Date.now();
    const failure = await failureOf(imagesFor({ requestTimeoutMs: 200, waitSeconds: 0 }).createHeaderImage(callFor()));
    expect(failure).toMatchObject({ code: 'REPLICATE_TIMEOUT', retryable: true });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(fake.creates()).toHaveLength(1);
  });

  it('a poll that hangs past the deadline ends with a retryable PREDICTION_TIMEOUT, keeping the ref', async () => {
    fake.plan({ polls: 1000 });
    fake.script((req) => (req.method === 'GET' ? replicateReplies.hang() : undefined));
    const failure = await failureOf(imagesFor({ requestTimeoutMs: 100, deadlineMs: 300 }).createHeaderImage(callFor()));
    expect(failure).toMatchObject({ code: 'PREDICTION_TIMEOUT', retryable: true });
    expect(memory.stored()).toBeTruthy();
  });
});

describe('replicate images configuration', () => {
  it('rejects a model that is not owner/name[:version]', () => {
    expect(() => imagesFor({ model: 'flux' })).toThrow(/owner\/name/);
  });
});

describe('the fake follows the public API closely enough for the real replicate SDK', () => {
  it('creates with Prefer: wait and reads the prediction back', async () => {
    const replicate = new Replicate({ auth: TOKEN, baseUrl: fake.url });
    const created = await replicate.predictions.create({ model: 'owner/name', input: { prompt: 'x' }, wait: 1 });
    expect(created.status).toBe('starting');
    expect(fake.creates()[0]?.headers.prefer).toBe('wait=1');
    await replicate.predictions.get(created.id);
    const done = await replicate.predictions.get(created.id);
    expect(done).toMatchObject({ status: 'succeeded', output: [expect.stringContaining(created.id)] });
  });
});
