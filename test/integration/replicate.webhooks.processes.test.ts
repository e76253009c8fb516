/**
 * Replicate webhooks on the path users run (needs PostgreSQL and NATS): two `npm start` processes, each with its own
 * INKWELL_PUBLIC_URL and the same REPLICATE_WEBHOOK_SECRET, the real OpenAI, Replicate and Wix adapters against the
 * HTTP fakes. A prediction runs longer than the create's `Prefer: wait`; the fake Replicate sends the signed finished
 * prediction itself, but to the process that does NOT own the blog's store (as a load balancer in front of both may
 * route it). Shown: the image stage (at the owner) ends within 100 ms of the webhook, by the events' timestamps
 * against the fake's log of when it sent it; no poll is made for that prediction; the blog is DONE and published
 * once. Forged, stale and unsigned webhooks are refused with 401 by both processes and change nothing; the genuine
 * one replayed to both processes (ids seen are kept per process) adds no image, no publish and no event.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postWebhook, signWebhook, type FakeReplicate } from '../support/fake.replicate';
import type { FakeWix } from '../support/fake.wix';
import { streamEvents } from '../support/fleet.check';
import { freePort } from '../support/private.servers';
import { http, killGroup, spawnNpmStart, testStreams, until, type NpmStart } from '../support/process';
import { startProviderFakes, type ProviderFakes } from '../support/provider.fakes';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const SECRET = `whsec_${Buffer.from('replicate-processes-signing-key').toString('base64')}`;
const RUN_MS = 6500; // longer than the adapter's Prefer: wait=5
const STORE = 'hooks-two-processes';
const BLOG = 'hook-two-1';

interface Event {
  blogId: string;
  seq: number;
  status: string;
  at: string;
}

await describeWithPostgres('Replicate webhooks across two npm start processes (needs PostgreSQL, NATS)', (db) => {
  const t = testStreams(nats);
  let dataDir: string;
  let fakes: ProviderFakes | undefined;
  let replicate: FakeReplicate;
  let wix: FakeWix;
  let nc: NatsConnection | undefined;
  let client: pg.Client;
  const running: NpmStart[] = [];

  const start = async (nodeId: string) => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = spawnNpmStart({
      DATABASE_URL: db().url,
      ...t.env(),
      INKWELL_DATA_DIR: dataDir,
      INKWELL_NODE_ID: nodeId,
      PORT: String(port),
      REDIS_URL: '',
      INKWELL_PUBLIC_URL: base,
      REPLICATE_WEBHOOK_SECRET: SECRET,
      ...fakes!.env,
    });
    running.push(run);
    await run.logged('listening', 120_000);
    return { nodeId, base, run };
  };
  const events = async () =>
    ((await streamEvents(nc!, t.streams.evt)) as unknown as Event[]).filter((e) => e.blogId === BLOG);
  const blog = async (base: string) => (await http(base, 'GET', `/api/blogs/${BLOG}`)).body as Event;
  const publishes = () => wix.requests.filter((r) => /\/draft-posts\/[^/]+\/publish$/.test(r.path)).length;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-hooks-2p-'));
    fakes = await startProviderFakes('hooks', { runMs: RUN_MS, webhookSecret: SECRET });
    ({ replicate, wix } = fakes);
    if (nats) nc = await connect({ servers: nats.url });
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
  });
  afterAll(async () => {
    running.forEach(killGroup);
    await Promise.all(running.map((r) => r.exited));
    await nc?.close();
    await client?.end();
    await t.remove();
    await fakes?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats)(
    'the webhook reaches the owner through the other process: image stage ends within 100 ms, no poll, one publish',
    async () => {
      const a = await start('hooks-a');
      const b = await start('hooks-b');
      const created = await http(a.base, 'POST', '/api/blogs', {
        blogId: BLOG,
        instanceId: STORE,
        idea: { title: 'Webhooks across processes' },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(202);

      // Which process owns the store (so runs the blog): from the lease table. The webhook goes to the other one.
      const owner = await until('the store lease', async () => {
        const { rows } = await client.query<{ owner: string | null }>(
          'select owner from store_leases where instance_id = $1',
          [STORE],
        );
        return rows[0]?.owner ?? undefined;
      });
      const [runs, other] = owner === a.nodeId ? [a, b] : [b, a];
      expect(runs.nodeId).toBe(owner);
      console.log(`store ${STORE} is owned by ${owner}: the webhook goes to ${other.nodeId}`);
      replicate.routeWebhooks((url) => url.replace(runs.base, other.base));

      const create = await until('the prediction create', async () => replicate.creates()[0], 60_000, 20);
      expect(create.body).toMatchObject({
        webhook: `${runs.base}/hooks/replicate`,
        webhook_events_filter: ['completed'],
      });
      const [id] = [...replicate.predictions.keys()];
      await until(
        'the create answered, still processing',
        async () =>
          (await blog(runs.base)).status === 'GENERATING_IMAGE' &&
          replicate.predictions.get(id!)?.status === 'processing'
            ? true
            : undefined,
        30_000,
        20,
      );

      // A finished prediction as an attacker (wrong key) or a stale replay (6 minutes old) would send it, and
      // unsigned: refused by both processes, and the stage keeps waiting.
      const finished = JSON.stringify({ id, status: 'succeeded', output: ['https://evil.example/x.png'] });
      const forged = signWebhook(`whsec_${Buffer.from('not-the-key').toString('base64')}`, finished);
      const stale = signWebhook(SECRET, finished, 'msg_stale', Date.now() / 1000 - 360);
      for (const base of [runs.base, other.base]) {
        expect((await postWebhook(base, forged, finished)).status).toBe(401);
        expect((await postWebhook(base, stale, finished)).status).toBe(401);
        expect((await postWebhook(base, {}, finished)).status).toBe(401);
      }
      await new Promise((r) => setTimeout(r, 300));
      expect((await blog(runs.base)).status).toBe('GENERATING_IMAGE');
      expect((await events()).map((e) => e.status)).not.toContain('PUBLISHING');

      const sent = await until('the webhook', async () => replicate.webhooks[0], 30_000, 10);
      expect(sent.url).toBe(`${other.base}/hooks/replicate`);
      expect(JSON.parse(sent.body)).toMatchObject({ id, status: 'succeeded' });
      const done = await until('DONE', async () => {
        const found = await blog(runs.base);
        return found.status === 'DONE' ? found : undefined;
      });
      const all = await until('every event published', async () => {
        const found = await events();
        return found.length === done.seq ? found : undefined;
      });
      const published = all.find((e) => e.status === 'PUBLISHING')!;
      const lagMs = Date.parse(published.at) - sent.sentAt;
      console.log(`image stage ended ${lagMs} ms after the webhook was sent to ${other.nodeId} (owner ${owner})`);
      expect(lagMs).toBeLessThan(100);
      expect(lagMs).toBeGreaterThanOrEqual(-1); // not before it (1 ms: the two clocks round differently)
      expect(sent.status).toBe(200);
      expect(replicate.polls().filter((r) => r.path.includes(id!))).toHaveLength(0);
      expect(wix.posts(STORE)).toHaveLength(1);
      expect(wix.media(STORE)).toHaveLength(1);
      expect(publishes()).toBe(1);

      // The same delivery again, to the process that had it (a repeat) and to the owner (new to it): nothing changes.
      const again = await postWebhook(other.base, sent.headers, sent.body);
      expect([again.status, await again.json()]).toEqual([200, { received: 'repeat' }]);
      const elsewhere = await postWebhook(runs.base, sent.headers, sent.body);
      expect(elsewhere.status).toBe(200);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await blog(runs.base)).seq).toBe(done.seq);
      expect(await events()).toHaveLength(all.length);
      expect(replicate.creates()).toHaveLength(1);
      expect(wix.posts(STORE)).toHaveLength(1);
      expect(wix.media(STORE)).toHaveLength(1);
      expect(publishes()).toBe(1);
      expect(replicate.polls().filter((r) => r.path.includes(id!))).toHaveLength(0);
    },
    240_000,
  );
});
