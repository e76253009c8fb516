/**
 * The per-store cap seen from outside (needs PostgreSQL and NATS): a runtime process (the production composition of
 * the crash-test harness, commands over JetStream, events from the events stream) runs many blogs of one store,
 * at the default cap (20) and at 3. From the published status events alone, the blogs of the store in a working
 * status (`GENERATING_*`, `PUBLISHING`) at any moment never exceed the cap: not at creation, not after the owner
 * selects the ideas of every blog at once, not after every failed blog is retried at once. A blog that waits for
 * a slot says so: it is `PENDING` (`AWAITING_SELECTION → PENDING`, `FAILED → PENDING`, as the contract says).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WORKING_STATUSES, type BlogStatus } from '../../machines/blog.types';
import { eventProblems, streamEvents, type StatusEvent } from '../support/fleet.check';
import { http, killHard, type RuntimeProcess, startRuntime, testStreams, until } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();

/** Each stage call takes this long (`slow:<stage>`), so the blogs of the store overlap and fill its slots. */
const STAGE_MS = 300;
const KEYWORDS = ['slow:ideas', 'slow:article', 'slow:image', 'slow:publish', 'fail-once:image'];

interface Event extends StatusEvent {
  instanceId: string;
  at: string;
}

const working = (status: BlogStatus) => WORKING_STATUSES.includes(status);

/**
 * The most blogs in a working status at once, over the events whose `at` is at or after `from`, replaying every
 * event in `at` order. At the same millisecond a blog leaving work counts first: the slot it gives back is what
 * lets the next blog in, so that blog's change can never come before it.
 */
function mostWorking(events: Event[], from = -Infinity): number {
  const unique = new Map(events.map((e) => [`${e.blogId}#${e.seq}`, e]));
  const sorted = [...unique.values()].sort(
    (a, b) =>
      Date.parse(a.at) - Date.parse(b.at) || Number(working(a.status)) - Number(working(b.status)) || a.seq - b.seq,
  );
  const now = new Set<string>();
  let most = 0;
  for (const e of sorted) {
    if (working(e.status)) now.add(e.blogId);
    else now.delete(e.blogId);
    if (Date.parse(e.at) >= from) most = Math.max(most, now.size);
  }
  return most;
}

await describeWithPostgres('the per-store cap, end to end (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  let nc: NatsConnection;
  const running: RuntimeProcess[] = [];
  const nts = testStreams(nats);

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-cap-'));
    if (nats) nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await Promise.all(running.map(killHard));
    await nc?.close();
    await nts.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  const cases: Array<{ cap: number; blogs: number; env: Record<string, string> }> = [
    { cap: 3, blogs: 8, env: { INKWELL_MAX_ACTIVE_PER_STORE: '3' } },
    { cap: 20, blogs: 26, env: {} }, // the default cap
  ];

  it.skipIf(!nats).each(cases)(
    'never has more than $cap blogs of a store working, after selects and retries of every blog at once',
    async ({ cap, blogs, env }) => {
      const rt = await startRuntime({
        DATABASE_URL: db().url,
        ...nts.env(),
        INKWELL_DATA_DIR: dataDir,
        INKWELL_NODE_ID: `cap-${cap}`,
        INKWELL_MAX_ATTEMPTS: '1', // the scripted image failure fails the blog: it needs a retry
        HARNESS_SLOW_MS: String(STAGE_MS),
        PORT: '0',
        ...env,
      });
      running.push(rt);
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      await until('the commands stream', () => jsm.streams.info(nts.streams.cmd));
      const store = `cap-store-${cap}`;
      const ids = Array.from({ length: blogs }, (_, i) => `cap${cap}-${i}`);
      const send = (name: string, body: Record<string, unknown>) => {
        const h = headers();
        h.set('Nats-Msg-Id', `${name}-${String(body.blogId)}`);
        return js.publish(`${nts.prefix}.${name}`, JSON.stringify(body), { headers: h });
      };
      const all = async (status: BlogStatus) =>
        until(
          `every blog of ${store} ${status}`,
          async () => {
            const res = await http(rt.base, 'GET', `/api/blogs?instanceId=${store}&limit=500`);
            const items = (res.body as { items: Array<{ blogId: string; status: string; seq: number }> }).items;
            return items.length === blogs && items.every((b) => b.status === status) ? items : undefined;
          },
          60_000,
          100,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${rt.output.slice(-20).join('\n')}`);
        });

      await Promise.all(
        ids.map((blogId) => send('create', { blogId, instanceId: store, topic: 'tea', keywords: KEYWORDS })),
      );
      await all('AWAITING_SELECTION');
      await Promise.all(ids.map((blogId) => send('select', { blogId, instanceId: store, ideaIndex: 0 })));
      await all('FAILED'); // each failed its image once (scripted)
      await Promise.all(ids.map((blogId) => send('retry', { blogId, instanceId: store })));
      const done = await all('DONE');

      const seqs = new Map(done.map((b) => [b.blogId, b.seq]));
      const events = await until('every event published', async () => {
        const found = ((await streamEvents(nc, nts.streams.evt)) as Event[]).filter((e) => e.instanceId === store);
        return new Set(found.map((e) => `${e.blogId}#${e.seq}`)).size === [...seqs.values()].reduce((a, b) => a + b)
          ? found
          : undefined;
      });
      expect(eventProblems(events, seqs)).toEqual([]);
      const changes = (from: string, to: string) =>
        events.filter((e) => e.previousStatus === from && e.status === to).length;
      expect(changes('AWAITING_SELECTION', 'PENDING'), 'every select waits in PENDING').toBe(blogs);
      expect(changes('FAILED', 'PENDING'), 'every retry waits in PENDING').toBe(blogs);
      expect(changes('PENDING', 'GENERATING_IMAGE'), 'a retry resumes the stage that failed').toBe(blogs);

      const firstAt = (from: string) =>
        Math.min(
          ...events.filter((e) => e.previousStatus === from && e.status === 'PENDING').map((e) => Date.parse(e.at)),
        );
      const most = {
        all: mostWorking(events),
        afterSelect: mostWorking(events, firstAt('AWAITING_SELECTION')),
        afterRetry: mostWorking(events, firstAt('FAILED')),
      };
      console.log(`[store cap ${cap}] most blogs working at once, from the events: ${JSON.stringify(most)}`);
      // At most the cap, and the cap reached: the store was full in every phase, so the bound was tested.
      expect(most).toEqual({ all: cap, afterSelect: cap, afterRetry: cap });
      // Stopped before the next case: stores are leased per process, and the next one must run its own store.
      rt.proc.kill('SIGTERM');
      await rt.exited;
    },
    120_000,
  );
});
