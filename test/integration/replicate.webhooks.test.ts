/**
 * Replicate webhooks end to end on the embedded default: the runtime creates predictions with its webhook URL, the
 * fake Replicate (slower than the create's `Prefer: wait`) POSTs the signed finished prediction there, and the image
 * stage ends at once with no poll made. Forged, stale and replayed webhooks are refused or ignored and change nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';
import { postWebhook, signWebhook, startFakeReplicate, type FakeReplicate } from '../support/fake.replicate';
import { freePort } from '../support/private.servers';

const SECRET = `whsec_${Buffer.from('replicate-test-signing-key-0123').toString('base64')}`;
const RUN_MS = 6500; // longer than the adapter's Prefer: wait=5
let dataDir: string;
let runtime: Runtime;
let fake: FakeReplicate;
let base: string;
/** Status events per blog, with the time they were seen. */
const events: Array<{ blogId: string; status: string; seq: number; seenAt: number }> = [];

async function until<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const post = (headers: Record<string, string>, body: string) => postWebhook(base, headers, body);

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-hooks-'));
  fake = await startFakeReplicate({ runMs: RUN_MS, webhookSecret: SECRET });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    INKWELL_DATA_DIR: dataDir,
    INKWELL_LOG_LEVEL: 'silent',
    PORT: String(port),
    REPLICATE_API_TOKEN: 'r8_test',
    REPLICATE_BASE_URL: fake.url,
    INKWELL_PUBLIC_URL: base,
    REPLICATE_WEBHOOK_SECRET: SECRET,
  });
  ({ runtime } = await composeRuntime({ config, database: await openPglite(undefined) }));
  runtime.bus.subscribe(runtime.subjects.allEvents, (msg) => {
    const e = JSON.parse(new TextDecoder().decode(msg.data)) as { blogId: string; status: string; seq: number };
    events.push({ blogId: e.blogId, status: e.status, seq: e.seq, seenAt: Date.now() });
  });
  await runtime.start();
}, 60_000);

afterAll(async () => {
  await runtime?.stop();
  await fake?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('Replicate webhooks', { timeout: 60_000 }, () => {
  it('ends the image stage within 100 ms of the webhook, with no poll; forged, stale and replayed ones change nothing', async () => {
    await runtime.intake.apply('create', { blogId: 'hook-1', instanceId: 'store-h', idea: { title: 'Webhooks' } });
    const create = await until('the prediction create', () => fake.creates()[0]);
    expect(create.body).toMatchObject({ webhook: `${base}/hooks/replicate`, webhook_events_filter: ['completed'] });
    const [id] = [...fake.predictions.keys()];
    await until('the create answer', () =>
      events.some((e) => e.blogId === 'hook-1' && e.status === 'GENERATING_IMAGE') &&
      fake.predictions.get(id!)?.status === 'processing'
        ? true
        : undefined,
    );

    // A finished prediction, as an attacker (wrong key) or a stale replay (6 minutes old) would send it.
    const finished = JSON.stringify({ id, status: 'succeeded', output: ['https://evil.example/x.png'] });
    const forged = signWebhook(`whsec_${Buffer.from('not-the-key').toString('base64')}`, finished);
    expect((await post(forged, finished)).status).toBe(401);
    expect((await post(signWebhook(SECRET, finished, 'msg_stale', Date.now() / 1000 - 360), finished)).status).toBe(
      401,
    );
    expect((await post({}, finished)).status).toBe(401);
    // A genuine delivery of the prediction still running (a `start` or `output` event, or one overtaken by the
    // `completed` one): acknowledged, and it neither ends the stage nor stops the process (it used to be kept and
    // answer every wait at once, the image stage spinning on it for 150 s without yielding to timers or I/O).
    const running = JSON.stringify({ id, status: 'processing', output: null });
    expect((await post(signWebhook(SECRET, running), running)).status).toBe(200);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(ticker);
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(events.filter((e) => e.blogId === 'hook-1').map((e) => e.status)).not.toContain('PUBLISHING');

    const sent = await until('the webhook', () => fake.webhooks[0]);
    expect(JSON.parse(sent.body)).toMatchObject({ id, status: 'succeeded' });
    const published = await until('the image stage to end', () =>
      events.find((e) => e.blogId === 'hook-1' && e.status === 'PUBLISHING'),
    );
    const lagMs = published.seenAt - sent.sentAt;
    console.log(`image stage ended ${lagMs} ms after the webhook was sent`);
    expect(lagMs).toBeLessThan(100);
    expect(await until('the webhook answer', () => sent.status)).toBe(200);
    expect(fake.polls()).toHaveLength(0);
    const done = await until('DONE', () => events.find((e) => e.blogId === 'hook-1' && e.status === 'DONE'));
    const blog = await runtime.intake.get('hook-1', 'store-h');
    expect(blog.status).toBe('DONE');

    // The same delivery again (Replicate retries): acknowledged, nothing changes.
    const replay = await post(sent.headers, sent.body);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ received: 'repeat' });
    await new Promise((r) => setTimeout(r, 200));
    expect((await runtime.intake.get('hook-1', 'store-h')).seq).toBe(done.seq);
    expect(fake.creates()).toHaveLength(1);
  });
});
