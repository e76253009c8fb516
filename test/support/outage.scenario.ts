/**
 * The world of the outage tests (test/faults/outage.*.test.ts), on the path users run: `src/main.ts` (what
 * `npm start` runs) as its own process, with the real OpenAI, Replicate and Wix adapters pointed at the local fakes
 * (each answering slowly enough that blogs are spread over every stage), `INKWELL_RETRY_BASE_MS` small and
 * `INKWELL_MAX_ATTEMPTS` 3 (a spent attempt shows as FAILED within seconds), and commands over JetStream. The
 * checks every outage must pass are in `verify()`; they count what the fakes received, not what the runtime logged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { STAGES } from '../../machines/blog.types';
import { openAiReplies } from './fake.openai';
import { http, startRuntime, until, type RuntimeProcess } from './process';
import { startProviderFakes } from './provider.fakes';

/** Where the runtime finds its servers; a test points the one it breaks at a private instance. */
export interface OutageOptions {
  databaseUrl: string;
  natsUrl: string;
  redisUrl?: string;
}

const STORES = 4;

/** Starts the fakes, the runtime and a NATS client; `close()` removes them all. */
export async function startOutageWorld(opts: OutageOptions) {
  const prefix = `t_outage_${Math.random().toString(36).slice(2, 10)}`;
  const streams = { commands: `${prefix}_CMD`.toUpperCase(), events: `${prefix}_EVT`.toUpperCase() };
  const fakes = await startProviderFakes('outage');
  const { openai, replicate, wix } = fakes;
  // Slow enough that blogs sit in every stage at once: ~0.7 s per text, two 1 s polls per image, 5 Wix calls.
  openai.script(() => openAiReplies.slow(700));
  replicate.plan({ polls: 2, status: 'succeeded' });
  wix.fault({ kind: 'slow', delayMs: 250, path: /^\/(blog|site-media|ricos)\//, times: 1e9 });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-outage-'));
  const rt: RuntimeProcess = await startRuntime(
    {
      DATABASE_URL: opts.databaseUrl,
      NATS_URL: opts.natsUrl,
      ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
      INKWELL_SUBJECT_PREFIX: prefix,
      INKWELL_COMMANDS_STREAM: streams.commands,
      INKWELL_EVENTS_STREAM: streams.events,
      INKWELL_DATA_DIR: dataDir,
      INKWELL_RETRY_BASE_MS: '50',
      INKWELL_MAX_ATTEMPTS: '3',
      ...fakes.env,
      REPLICATE_MODEL: 'acme/painter',
      PORT: '0',
    },
    'src/main.ts',
    60_000,
    opts.redisUrl ? [] : ['REDIS_URL'],
  );
  const nc: NatsConnection = await connect({ servers: opts.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const js: JetStreamClient = jetstream(nc, { timeout: 5_000 });

  const created: Array<{ blogId: string; instanceId: string; topic: boolean }> = [];
  const selected = new Set<string>();
  let held: string[] = [];
  let holding = false;

  /** JetStream publish, repeated until it is stored (the PubAck): a command the test sent is never lost. */
  async function send(command: string, body: Record<string, unknown>, msgId: string) {
    const h = headers();
    h.set('Nats-Msg-Id', msgId);
    await until(
      `PubAck for ${msgId}`,
      () => js.publish(`${prefix}.${command}`, JSON.stringify(body), { headers: h }),
      120_000,
      200,
    );
  }

  async function select(blogId: string) {
    const blog = created.find((b) => b.blogId === blogId)!;
    await send('select', { blogId, instanceId: blog.instanceId, ideaIndex: 1 }, `select-${blogId}`);
  }

  /** Selects an idea for every blog that awaits one (or holds it back while `holding`). */
  async function selectWaiting(): Promise<void> {
    const res = await http(rt.base, 'GET', '/api/blogs?status=AWAITING_SELECTION&limit=500');
    if (res.status !== 200) return;
    for (const item of res.body.items as Array<{ blogId: string }>) {
      if (selected.has(item.blogId)) continue;
      selected.add(item.blogId);
      if (holding) held.push(item.blogId);
      else await select(item.blogId);
    }
  }

  async function fleet(): Promise<{ byStatus: Record<string, number>; failures: Record<string, number> }> {
    return (await http(rt.base, 'GET', '/api/fleet')).body;
  }

  return {
    rt,
    openai,
    replicate,
    wix,
    nc,
    created,
    /** Publishes `count` creates over JetStream; every third blog has a topic (so it passes AWAITING_SELECTION). */
    async create(count: number, tag: string): Promise<void> {
      const start = created.length;
      for (let i = start; i < start + count; i++) {
        const blog = { blogId: `${tag}-${i}`, instanceId: `store-${i % STORES}`, topic: i % 3 === 0 };
        created.push(blog);
        const what = blog.topic ? { topic: `Outage-proof topic ${i}` } : { idea: { title: `Outage-proof post ${i}` } };
        await send('create', { blogId: blog.blogId, instanceId: blog.instanceId, ...what }, `create-${blog.blogId}`);
      }
    },
    /** While holding, blogs that reach AWAITING_SELECTION wait there; `release()` sends their selections. */
    hold: () => void (holding = true),
    async release(): Promise<number> {
      holding = false;
      const list = held;
      held = [];
      for (const blogId of list) await select(blogId);
      return list.length;
    },
    /** Creates blogs in small waves until the process has blogs in every working stage and awaiting a selection. */
    async spreadOverEveryStage(tag: string): Promise<Record<string, number>> {
      this.hold();
      for (let wave = 0; wave < 40; wave++) {
        await this.create(3, tag);
        await new Promise((r) => setTimeout(r, 300));
        await selectWaiting();
        const { byStatus } = await fleet();
        if (STAGES.every((s) => (byStatus[s] ?? 0) > 0)) return byStatus;
      }
      throw new Error(`blogs never were in every stage at once: ${JSON.stringify((await fleet()).byStatus)}`);
    },
    health: () => http(rt.base, 'GET', '/healthz'),
    /** Polls `/healthz` until it answers 503 naming `service`, and returns that answer. */
    async healthWhileDown(service: string, timeoutMs: number) {
      return until(
        `/healthz to name ${service} as down`,
        async () => {
          const res = await http(rt.base, 'GET', '/healthz');
          return res.status === 503 && (res.body.down as string[]).includes(service) ? res : undefined;
        },
        timeoutMs,
        200,
      );
    },
    /** Waits until every blog created is DONE, selecting ideas as blogs ask for them. */
    async allDone(timeoutMs: number): Promise<void> {
      const outcome = await until(
        'every blog DONE',
        async () => {
          await selectWaiting();
          const res = await http(rt.base, 'GET', '/api/blogs?limit=500');
          const items = (res.body.items ?? []) as Array<{ status: string }>;
          if (items.some((b) => b.status === 'FAILED')) return 'a blog FAILED'; // nothing retries it: stop here
          return items.length === created.length && items.every((b) => b.status === 'DONE') ? 'done' : undefined;
        },
        timeoutMs,
        250,
      )
        .then((result) => {
          if (result !== 'done') throw new Error(result);
        })
        .catch(async (err: unknown) => {
          const snapshot = await fleet().catch(() => undefined);
          const [byStatus, failures] = [snapshot?.byStatus ?? {}, snapshot?.failures ?? {}];
          const posts = Array.from({ length: STORES }, (_, s) => wix.posts(`store-${s}`)).flat().length;
          // Posts live on Wix beyond the blogs that reached DONE: orphans.
          const orphans = posts - (byStatus['DONE'] ?? 0);
          throw new Error(
            `${String(err)}; statuses ${JSON.stringify(byStatus)}, failures ${JSON.stringify(failures)}; ` +
              `${posts} posts on Wix, ${orphans} of them for blogs not DONE; ` +
              `runtime exit code ${rt.proc.exitCode}; its last output:\n${rt.output
                .slice(-10)
                .map((l) => l.slice(0, 300))
                .join('\n')}`,
          );
        });
      return outcome;
    },
    /**
     * The checks of every outage test: all DONE with a post of its own, exactly the provider calls a blog needs (so
     * none repeated for the outage), one post per blog and none extra, every event published in order, healthy.
     */
    async verify(): Promise<void> {
      const blogs = (await http(rt.base, 'GET', '/api/blogs?limit=500')).body.items as Array<{
        blogId: string;
        instanceId: string;
        status: string;
        seq: number;
        post?: { id: string };
      }>;
      expect(blogs).toHaveLength(created.length);
      expect(blogs.filter((b) => b.status !== 'DONE')).toEqual([]);
      expect((await fleet()).failures).toEqual({});

      const topics = created.filter((b) => b.topic).length;
      const schema = (name: string) =>
        openai.completions().filter((r) => JSON.stringify(r.body).includes(`"name":"${name}"`)).length;
      expect({ ideas: schema('blog_ideas'), articles: schema('blog_article') }).toEqual({
        ideas: topics,
        articles: created.length,
      });
      expect(replicate.creates()).toHaveLength(created.length);
      const wixCalls = (p: RegExp) => wix.requests.filter((r) => r.method === 'POST' && p.test(r.path)).length;
      expect({
        imports: wixCalls(/^\/site-media\/v1\/files\/import$/),
        drafts: wixCalls(/^\/blog\/v3\/draft-posts$/),
        lookups: wixCalls(/^\/blog\/v3\/draft-posts\/query$/),
        publishes: wixCalls(/\/publish$/),
      }).toEqual({ imports: created.length, drafts: created.length, lookups: 0, publishes: created.length });
      const posts = Array.from({ length: STORES }, (_, s) => wix.posts(`store-${s}`)).flat();
      expect(posts).toHaveLength(created.length);
      expect(new Set(blogs.map((b) => b.post?.id))).toEqual(new Set(posts.map((p) => p.id)));

      const events = await readEvents(nc, streams.events);
      for (const blog of blogs) expect(eventProblems(blog.blogId, blog.seq, events.get(blog.blogId) ?? [])).toEqual([]);

      expect(await this.health()).toEqual({ status: 200, body: { status: 'ok' } });
      expect(rt.proc.exitCode).toBeNull();
    },
    async close(): Promise<void> {
      rt.proc.kill('SIGKILL');
      await rt.exited;
      const jsm = await jetstreamManager(nc, { timeout: 5_000 }).catch(() => undefined);
      for (const s of Object.values(streams)) await jsm?.streams.delete(s).catch(() => undefined);
      await nc.close();
      await fakes.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The outage world's interface. */
export type OutageWorld = Awaited<ReturnType<typeof startOutageWorld>>;

/** Every event of the stream, per blog, in stream order. */
async function readEvents(
  nc: NatsConnection,
  stream: string,
): Promise<Map<string, Array<{ seq: number; status: string }>>> {
  const js = jetstream(nc, { timeout: 5_000 });
  const jsm = await jetstreamManager(nc, { timeout: 5_000 });
  const total = (await jsm.streams.info(stream)).state.messages;
  const out = new Map<string, Array<{ seq: number; status: string }>>();
  if (total === 0) return out;
  const consumer = await js.consumers.get(stream);
  const messages = await consumer.consume();
  let read = 0;
  for await (const m of messages) {
    const e = m.json<{ blogId: string; seq: number; status: string }>();
    out.set(e.blogId, [...(out.get(e.blogId) ?? []), { seq: e.seq, status: e.status }]);
    if (++read >= total) break;
  }
  await messages.close();
  return out;
}

/** What is wrong with one blog's events: seq 1..n first seen in order, one status per seq, ending DONE. */
export function eventProblems(blogId: string, seq: number, events: Array<{ seq: number; status: string }>): string[] {
  const problems: string[] = [];
  const statusOf = new Map<number, string>();
  const order: number[] = [];
  for (const e of events) {
    const known = statusOf.get(e.seq);
    if (known === undefined) {
      statusOf.set(e.seq, e.status);
      order.push(e.seq);
    } else if (known !== e.status) problems.push(`${blogId}: seq ${e.seq} is both ${known} and ${e.status}`);
  }
  const expected = Array.from({ length: seq }, (_, i) => i + 1);
  if (order.join(',') !== expected.join(',')) problems.push(`${blogId}: seqs ${order.join(',')}, expected 1..${seq}`);
  if (statusOf.get(seq) !== 'DONE') problems.push(`${blogId}: last event ${statusOf.get(seq)}, expected DONE`);
  return problems;
}
