/**
 * The NATS contract (needs PostgreSQL and NATS), against real runtime processes: commands kept while no runtime
 * runs, at-most-once application, rejections for bad input (acked, never redelivered), events relayed from the
 * outbox after a crash with no gap, store isolation over NATS and HTTP, and a failing command that backs off.
 * Each test has its own database, subject prefix and streams, and removes them afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from '@nats-io/jetstream';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blogIdForMessage, startCommandConsumer, type CommandHandler } from '../../src/bus/command.consumer';
import { connectNatsBus } from '../../src/bus/nats.bus';
import { subjectsFor } from '../../src/bus/subjects';
import { createLogger } from '../../src/logger';
import { requireNats, requirePostgres, type NatsHandle, type PostgresHandle } from '../support/servers';
import { http, killHard, startRuntime, until, type RuntimeProcess } from '../support/process';

/** A status event as published on `<prefix>.events.<instanceId>.<blogId>`. */
interface BlogEvent {
  blogId: string;
  instanceId: string;
  status: string;
  previousStatus: string | null;
  seq: number;
  at: string;
  ideas?: Array<{ title: string; summary: string }>;
  idea?: { title: string; summary: string };
  post?: { id: string; url?: string };
  error?: { stage: string; code: string; message: string; attempts: number };
}

/** A `<prefix>.rejected` payload. */
interface Rejection {
  subject: string;
  blogId?: string;
  instanceId?: string;
  code: string;
  message: string;
  at: string;
}

const idea = { title: 'How we roast our coffee', summary: 'From green beans to your cup.' };
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Events the outbox relay has not published yet: those after its cursor. */
const UNPUBLISHED = 'select 1 from outbox o where (o.tx, o.id) > (select tx, last_id from outbox_cursor)';

// Both servers are probed at load: the block is skipped without them, and fails under CI=true.
const probeDb = await requirePostgres();
await probeDb?.drop();
const natsProbe = await requireNats();

describe.skipIf(!probeDb || !natsProbe)('NATS contract (needs PostgreSQL and NATS)', () => {
  let db: PostgresHandle;
  let nats: NatsHandle;
  let prefix: string;
  let streams: { commands: string; events: string };
  let consumerName: string;
  let dataDir: string;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let client: pg.Client;
  let running: RuntimeProcess[];
  let events: Array<{ subject: string; event: BlogEvent }>;
  let rejections: Rejection[];
  let cleanups: Array<() => Promise<unknown>>;

  beforeEach(async () => {
    db = (await requirePostgres())!;
    nats = (await requireNats())!;
    prefix = nats.prefix;
    streams = { commands: `T_${prefix}_CMD`, events: `T_${prefix}_EVT` };
    consumerName = `inkwell_${prefix}`;
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-nats-'));
    client = new pg.Client({ connectionString: db.url });
    client.on('error', () => undefined);
    await client.connect();
    nc = await connect({ servers: nats.url, name: `test-${prefix}` });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    running = [];
    events = [];
    rejections = [];
    cleanups = [];
    nc.subscribe(`${prefix}.events.>`, {
      callback: (err, msg) => {
        if (!err) events.push({ subject: msg.subject, event: msg.json<BlogEvent>() });
      },
    });
    nc.subscribe(`${prefix}.rejected`, {
      callback: (err, msg) => {
        if (!err) rejections.push(msg.json<Rejection>());
      },
    });
    await nc.flush();
  });

  afterEach(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await Promise.all(running.map((rt) => rt.exited));
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    for (const name of Object.values(streams)) await jsm.streams.delete(name).catch(() => undefined);
    await nc.drain().catch(() => undefined);
    await client.end().catch(() => undefined);
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  // ---- helpers -------------------------------------------------------------------------------------------

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: db.url,
    NATS_URL: nats.url,
    INKWELL_SUBJECT_PREFIX: prefix,
    INKWELL_COMMANDS_STREAM: streams.commands,
    INKWELL_EVENTS_STREAM: streams.events,
    INKWELL_DATA_DIR: dataDir,
    PORT: '0',
    ...extra,
  });

  async function start(extra: Record<string, string> = {}): Promise<RuntimeProcess> {
    const rt = await startRuntime(env(extra));
    running.push(rt);
    // The runtime reports ready before its consumer has ensured the streams (see the report): wait for them.
    await until('the runtime to ensure its streams and consumer', () =>
      jsm.consumers.info(streams.commands, consumerName),
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail(rt)}`);
    });
    return rt;
  }

  const tail = (rt: RuntimeProcess) => rt.output.slice(-40).join('\n');

  /** JetStream publish of a command; `body` is JSON-encoded unless it is bytes or a string. */
  async function send(name: string, body: unknown, msgId?: string): Promise<PubAck> {
    const data =
      body instanceof Uint8Array ? body : encoder.encode(typeof body === 'string' ? body : JSON.stringify(body));
    const h = headers();
    if (msgId) h.set('Nats-Msg-Id', msgId);
    return js.publish(`${prefix}.${name}`, data, { headers: h });
  }

  async function row(blogId: string) {
    const res = await client.query<{ status: string; seq: number; version: number; instance_id: string }>(
      'select status, seq, version, instance_id from blogs where blog_id = $1',
      [blogId],
    );
    return res.rows[0];
  }

  async function waitStatus(blogId: string, status: string, rt?: RuntimeProcess, timeoutMs = 20_000) {
    let last: string | undefined;
    await until(
      `${blogId} to be ${status}`,
      async () => {
        last = (await row(blogId))?.status;
        return last === status ? true : undefined;
      },
      timeoutMs,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last: ${last})${rt ? `\n${tail(rt)}` : ''}`);
    });
  }

  const eventsOf = (blogId: string) => events.filter((e) => e.event.blogId === blogId).map((e) => e.event);

  /** Waits for the next rejection after the first `seen` ones. */
  const nextRejection = (seen: number, what: string) =>
    until(`a rejection for ${what}`, async () => rejections[seen], 5_000, 20);

  /** Every message of the events stream, replayed in stream order by an ordered consumer. */
  async function replayEvents(): Promise<BlogEvent[]> {
    const count = (await jsm.streams.info(streams.events)).state.messages;
    const out: BlogEvent[] = [];
    if (count === 0) return out;
    const consumer = await js.consumers.get(streams.events);
    const messages = await consumer.consume();
    for await (const m of messages) {
      expect(m.subject).toMatch(new RegExp(`^${prefix}\\.events\\.`));
      out.push(m.json<BlogEvent>());
      if (out.length >= count) break;
    }
    await messages.close();
    return out;
  }

  /** The shared durable consumer: nothing waiting, nothing unacked, nothing delivered twice. */
  async function consumerSettled() {
    return until('the command consumer to settle', async () => {
      const info = await jsm.consumers.info(streams.commands, consumerName);
      return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
    });
  }

  /** Seqs of one blog must be exactly 1..n, in order; returns the statuses. */
  function expectGapless(list: BlogEvent[], n: number, what: string): string[] {
    expect(
      list.map((e) => e.seq),
      what,
    ).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    return list.map((e) => e.status);
  }

  // ---- 1 -------------------------------------------------------------------------------------------------

  it('applies commands published while no runtime runs once one starts', async () => {
    const first = await start({ INKWELL_NODE_ID: 'first' });
    // The runtime created both streams; stop it gracefully so nothing consumes the commands below.
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect((await jsm.streams.info(streams.commands)).config.subjects).toEqual(
      expect.arrayContaining([`${prefix}.create`, `${prefix}.select`, `${prefix}.cancel`, `${prefix}.retry`]),
    );

    const a1 = await send('create', { blogId: 'offline-1', instanceId: 'store-a', idea }, 'offline-1-create');
    const a2 = await send('create', { blogId: 'offline-2', instanceId: 'store-b', topic: 'tea' }, 'offline-2-create');
    expect(a1.stream).toBe(streams.commands);
    expect([a1.duplicate, a2.duplicate]).toEqual([false, false]);
    await sleep(300);
    expect((await client.query('select count(*)::int as n from blogs')).rows[0].n, 'nothing applied yet').toBe(0);

    const second = await start({ INKWELL_NODE_ID: 'second' });
    await waitStatus('offline-1', 'DONE', second);
    await waitStatus('offline-2', 'AWAITING_SELECTION', second);
    await until('the events of offline-1 up to DONE', async () =>
      eventsOf('offline-1').some((e) => e.status === 'DONE') ? true : undefined,
    );
    const done = eventsOf('offline-1');
    const statuses = expectGapless(done, (await row('offline-1'))!.seq, 'offline-1 seqs');
    expect(statuses).toEqual(['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'DONE']);
    expect(done.at(-1)!.post?.id).toBeTruthy();
    expect(done.at(-1)!.previousStatus).toBe('PUBLISHING');
    for (const e of events.filter((x) => x.event.blogId === 'offline-1')) {
      expect(e.subject).toBe(`${prefix}.events.store-a.offline-1`);
    }
    await until('the AWAITING_SELECTION event of offline-2', async () =>
      eventsOf('offline-2').find((e) => e.status === 'AWAITING_SELECTION'),
    );
    const awaiting = eventsOf('offline-2').find((e) => e.status === 'AWAITING_SELECTION')!;
    expect(awaiting.ideas!.length).toBeGreaterThan(0);
    expect(rejections).toEqual([]);
    await consumerSettled();
  }, 60_000);

  // ---- 2 -------------------------------------------------------------------------------------------------

  it('applies each command at most once: duplicate msg ids, a re-published create, a repeated select', async () => {
    // The runtime's commands stream, but with a 2 s duplicate window, so that a re-publish with the same
    // Nats-Msg-Id after it reaches the runtime again (as a redelivery would). The runtime keeps an existing stream.
    await jsm.streams.add({
      name: streams.commands,
      subjects: ['create', 'select', 'cancel', 'retry'].map((c) => `${prefix}.${c}`),
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: nanos(2_000),
      max_age: nanos(3_600_000),
    });
    const rt = await start();
    expect((await jsm.streams.info(streams.commands)).config.duplicate_window).toBe(nanos(2_000));

    // The same create twice with one Nats-Msg-Id: JetStream drops the second.
    const first = await send('create', { blogId: 'dup-1', instanceId: 'store-dup', idea }, 'create-dup-1');
    const again = await send('create', { blogId: 'dup-1', instanceId: 'store-dup', idea }, 'create-dup-1');
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);

    // A create without blogId delivered twice (re-published after the window): one blog, named by its msg id.
    const gen1 = await send('create', { instanceId: 'store-gen', idea }, 'create-gen-1');
    await until('the generated blog', async () =>
      (await client.query("select 1 from blogs where instance_id = 'store-gen'")).rowCount ? true : undefined,
    );
    await sleep(2_300);
    const gen2 = await send('create', { instanceId: 'store-gen', idea }, 'create-gen-1');
    expect(gen2.duplicate, 'stored again: a second delivery').toBe(false);
    expect(gen2.seq).toBeGreaterThan(gen1.seq);

    // The same select twice with different msg ids: applied once.
    await send('create', { blogId: 'sel-1', instanceId: 'store-sel', topic: 'coffee' }, 'create-sel-1');
    await waitStatus('sel-1', 'AWAITING_SELECTION', rt);
    await send('select', { blogId: 'sel-1', instanceId: 'store-sel', ideaIndex: 1 }, 'select-sel-1-a');
    await send('select', { blogId: 'sel-1', instanceId: 'store-sel', ideaIndex: 0 }, 'select-sel-1-b');
    await waitStatus('sel-1', 'DONE', rt);
    await waitStatus('dup-1', 'DONE', rt);
    await consumerSettled();
    await until('the DONE event of sel-1', async () =>
      eventsOf('sel-1').some((e) => e.status === 'DONE') ? true : undefined,
    );

    const gen = await client.query<{ blog_id: string }>("select blog_id from blogs where instance_id = 'store-gen'");
    expect(gen.rows.map((r) => r.blog_id)).toEqual([blogIdForMessage({ msgId: 'create-gen-1' })]);
    const dup = await client.query("select blog_id from blogs where instance_id = 'store-dup'");
    expect(dup.rowCount).toBe(1);
    const created = await client.query("select blog_id from outbox where seq = 1 and instance_id = 'store-gen'");
    expect(created.rowCount, 'one PENDING event for the generated blog').toBe(1);

    const selEvents = eventsOf('sel-1');
    expectGapless(selEvents, (await row('sel-1'))!.seq, 'sel-1 seqs');
    const ideas = selEvents.find((e) => e.status === 'AWAITING_SELECTION')!.ideas!;
    const content = selEvents.filter((e) => e.status === 'GENERATING_CONTENT');
    expect(content).toHaveLength(1);
    expect(content[0]!.idea?.title, 'the first select (index 1) won').toBe(ideas[1]!.title);
    expect(rejections).toEqual([
      expect.objectContaining({
        subject: `${prefix}.select`,
        blogId: 'sel-1',
        instanceId: 'store-sel',
        code: 'INVALID_STATE',
      }),
    ]);
  }, 60_000);

  // ---- 3 -------------------------------------------------------------------------------------------------

  it('rejects bad input with the right code, acks it, and keeps running', async () => {
    const rt = await start();
    const health: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        health.push((await fetch(`${rt.base}/healthz`)).status);
        await sleep(100);
      }
    })();

    await send('create', { blogId: 'await-1', instanceId: 'store-x', topic: 'bread' });
    await send('create', { blogId: 'idea-1', instanceId: 'store-x', idea });
    await waitStatus('await-1', 'AWAITING_SELECTION', rt);
    const awaiting = await until('the ideas of await-1', async () =>
      eventsOf('await-1').find((e) => e.status === 'AWAITING_SELECTION'),
    );
    const ideaCount = awaiting.ideas!.length;
    expect(ideaCount).toBeGreaterThan(1);

    const cases: Array<{
      what: string;
      name: string;
      body: unknown;
      code: string;
      blogId?: string;
      instanceId?: string;
    }> = [
      { what: 'not JSON', name: 'create', body: '{"instanceId": "s", topic', code: 'INVALID_PAYLOAD' },
      { what: 'not UTF-8', name: 'create', body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), code: 'INVALID_PAYLOAD' },
      { what: 'a JSON array', name: 'create', body: [{ instanceId: 's', topic: 't' }], code: 'INVALID_PAYLOAD' },
      { what: 'JSON null', name: 'cancel', body: 'null', code: 'INVALID_PAYLOAD' },
      { what: 'instanceId a number', name: 'create', body: { instanceId: 42, topic: 't' }, code: 'INVALID_PAYLOAD' },
      {
        what: 'neither topic nor idea',
        name: 'create',
        body: { instanceId: 'store-x' },
        code: 'INVALID_PAYLOAD',
        instanceId: 'store-x',
      },
      {
        what: 'topic over 500 characters',
        name: 'create',
        body: { instanceId: 'store-x', topic: 'x'.repeat(501) },
        code: 'INVALID_PAYLOAD',
        instanceId: 'store-x',
      },
      {
        what: 'a body over 64 KiB',
        name: 'create',
        body: { instanceId: 'store-x', topic: 't', keywords: ['k'], pad: 'p'.repeat(70 * 1024) },
        code: 'INVALID_PAYLOAD',
      },
      {
        what: 'bad characters in blogId',
        name: 'create',
        body: { blogId: 'bad id!', instanceId: 'store-x', topic: 't' },
        code: 'INVALID_PAYLOAD',
        blogId: 'bad id!',
        instanceId: 'store-x',
      },
      {
        what: 'blogId over 64 characters',
        name: 'cancel',
        body: { blogId: 'b'.repeat(65), instanceId: 'store-x' },
        code: 'INVALID_PAYLOAD',
        blogId: 'b'.repeat(64), // the handler echoes at most 64 characters of what it was given
        instanceId: 'store-x',
      },
      {
        what: 'an unknown extra field',
        name: 'create',
        body: { instanceId: 'store-x', topic: 't', color: 'red' },
        code: 'INVALID_PAYLOAD',
        instanceId: 'store-x',
      },
      {
        what: 'an unknown blog',
        name: 'select',
        body: { blogId: 'nope-1', instanceId: 'store-x', ideaIndex: 0 },
        code: 'NOT_FOUND',
        blogId: 'nope-1',
        instanceId: 'store-x',
      },
      {
        what: "another store's blog",
        name: 'cancel',
        body: { blogId: 'await-1', instanceId: 'store-y' },
        code: 'NOT_FOUND',
        blogId: 'await-1',
        instanceId: 'store-y',
      },
      {
        what: 'select when not awaiting',
        name: 'select',
        body: { blogId: 'idea-1', instanceId: 'store-x', ideaIndex: 0 },
        code: 'INVALID_STATE',
        blogId: 'idea-1',
        instanceId: 'store-x',
      },
      {
        what: 'ideaIndex out of range',
        name: 'select',
        body: { blogId: 'await-1', instanceId: 'store-x', ideaIndex: ideaCount },
        code: 'INVALID_SELECTION',
        blogId: 'await-1',
        instanceId: 'store-x',
      },
      {
        what: 'negative ideaIndex',
        name: 'select',
        body: { blogId: 'await-1', instanceId: 'store-x', ideaIndex: -1 },
        code: 'INVALID_SELECTION',
        blogId: 'await-1',
        instanceId: 'store-x',
      },
      {
        what: 'ideaIndex not an integer',
        name: 'select',
        body: { blogId: 'await-1', instanceId: 'store-x', ideaIndex: 0.5 },
        code: 'INVALID_PAYLOAD',
        blogId: 'await-1',
        instanceId: 'store-x',
      },
      {
        what: 'ideaIndex a string',
        name: 'select',
        body: { blogId: 'await-1', instanceId: 'store-x', ideaIndex: '0' },
        code: 'INVALID_PAYLOAD',
        blogId: 'await-1',
        instanceId: 'store-x',
      },
      {
        what: 'retry when not failed',
        name: 'retry',
        body: { blogId: 'await-1', instanceId: 'store-x' },
        code: 'INVALID_STATE',
        blogId: 'await-1',
        instanceId: 'store-x',
      },
    ];

    for (const [i, c] of cases.entries()) {
      // A valid blog goes in beside the bad ones.
      if (i === 3) await send('create', { blogId: 'valid-1', instanceId: 'store-v', idea });
      const seen = rejections.length;
      await send(c.name, c.body);
      const r = await nextRejection(seen, c.what);
      expect(r, c.what).toEqual({
        subject: `${prefix}.${c.name}`,
        code: c.code,
        message: expect.any(String),
        at: expect.any(String),
        ...(c.blogId ? { blogId: c.blogId } : {}),
        ...(c.instanceId ? { instanceId: c.instanceId } : {}),
      });
      expect(r.message.length, c.what).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(r.at)), c.what).toBe(false);
    }

    await waitStatus('valid-1', 'DONE', rt);
    // Acked, not redelivered: nothing pending or redelivered, and no second rejection a few seconds later.
    const info = await consumerSettled();
    expect(info.num_redelivered).toBe(0);
    await sleep(2_500);
    expect(rejections).toHaveLength(cases.length);
    expect((await jsm.consumers.info(streams.commands, consumerName)).num_redelivered).toBe(0);

    // Nothing changed: the awaiting blog still awaits, and the process is alive and healthy throughout.
    expect((await row('await-1'))!.status).toBe('AWAITING_SELECTION');
    expect((await row('idea-1'))!.status).toBe('DONE');
    expect((await client.query("select 1 from blogs where instance_id = 'store-y'")).rowCount).toBe(0);
    watching = false;
    await watcher;
    expect(health.length).toBeGreaterThan(5);
    expect(new Set(health)).toEqual(new Set([200]));
    expect(rt.proc.exitCode).toBeNull();
  }, 60_000);

  // ---- 4 -------------------------------------------------------------------------------------------------

  it('publishes every committed status change after a crash before publishing, gapless and in order', async () => {
    const blocked = await start({ HARNESS_BLOCK_EVENTS: '1', HARNESS_HOLD: '1', INKWELL_NODE_ID: 'blocked' });
    await send('create', { blogId: 'ev-done', instanceId: 'store-1', idea });
    await send('create', { blogId: 'ev-held', instanceId: 'store-2', idea, keywords: ['hold:article'] });
    await send('create', { blogId: 'ev-select', instanceId: 'store-3', topic: 'cheese' });
    await send('create', { blogId: 'ev-cancel', instanceId: 'store-3', topic: 'wine' });
    await waitStatus('ev-select', 'AWAITING_SELECTION', blocked);
    await waitStatus('ev-cancel', 'AWAITING_SELECTION', blocked);
    await send('select', { blogId: 'ev-select', instanceId: 'store-3', ideaIndex: 0 });
    await send('cancel', { blogId: 'ev-cancel', instanceId: 'store-3' });
    await waitStatus('ev-done', 'DONE', blocked);
    await waitStatus('ev-held', 'GENERATING_CONTENT', blocked);
    await waitStatus('ev-select', 'DONE', blocked);
    await waitStatus('ev-cancel', 'CANCELLED', blocked);

    const blogIds = ['ev-done', 'ev-held', 'ev-select', 'ev-cancel'];
    const committed = await client.query<{ n: number; unpublished: number; seqs: number }>(
      'select count(*)::int as n, count(*) filter (where (o.tx, o.id) > (select tx, last_id from outbox_cursor))::int as unpublished, ' +
        '(select sum(seq)::int from blogs) as seqs from outbox o',
    );
    const { n, unpublished, seqs } = committed.rows[0]!;
    expect(n, 'one outbox row per status change').toBe(seqs);
    expect(n).toBeGreaterThanOrEqual(15);
    expect(unpublished, 'all committed, none published').toBe(n);
    expect(events).toEqual([]);
    expect((await jsm.streams.info(streams.events)).state.messages).toBe(0);

    await killHard(blocked);
    const normal = await start({ INKWELL_NODE_ID: 'normal' });
    await waitStatus('ev-held', 'DONE', normal);
    const finalSeq = Object.fromEntries(await Promise.all(blogIds.map(async (b) => [b, (await row(b))!.seq])));
    await until('every event to arrive', async () =>
      blogIds.every((b) => new Set(eventsOf(b).map((e) => e.seq)).size === finalSeq[b]) ? true : undefined,
    );
    // Marked sent once the relay's transaction commits, just after the publish.
    await until('the outbox to drain', async () =>
      (await client.query(UNPUBLISHED)).rowCount === 0 ? true : undefined,
    );

    // Live: right subject, at least once, in order, every seq from 1 to the blog's last.
    for (const e of events) expect(e.subject).toBe(`${prefix}.events.${e.event.instanceId}.${e.event.blogId}`);
    for (const b of blogIds) {
      const seqList = eventsOf(b).map((e) => e.seq);
      expect(seqList, `${b} in order`).toEqual([...seqList].sort((x, y) => x - y));
      expect([...new Set(seqList)], `${b} gapless`).toEqual(Array.from({ length: finalSeq[b] }, (_, i) => i + 1));
    }
    // Replay: the events stream holds each change exactly once, in order.
    const replayed = await replayEvents();
    const statusesOf = (b: string) =>
      expectGapless(
        replayed.filter((e) => e.blogId === b),
        finalSeq[b],
        `${b} replayed`,
      );
    expect(statusesOf('ev-done')).toEqual(['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'DONE']);
    expect(statusesOf('ev-held')).toEqual(['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'DONE']);
    expect(statusesOf('ev-select')).toEqual([
      'PENDING',
      'GENERATING_IDEAS',
      'AWAITING_SELECTION',
      'PENDING',
      'GENERATING_CONTENT',
      'GENERATING_IMAGE',
      'PUBLISHING',
      'DONE',
    ]);
    expect(statusesOf('ev-cancel')).toEqual(['PENDING', 'GENERATING_IDEAS', 'AWAITING_SELECTION', 'CANCELLED']);
    for (const b of blogIds) {
      const list = replayed.filter((e) => e.blogId === b);
      list.forEach((e, i) => expect(e.previousStatus ?? null).toBe(i === 0 ? null : list[i - 1]!.status));
    }
  }, 60_000);

  // ---- 5 -------------------------------------------------------------------------------------------------

  it("never lets a store read or change another store's blog, over NATS or HTTP", async () => {
    const rt = await start();
    await send('create', { blogId: 'iso-1', instanceId: 'owner', topic: 'pottery' });
    await waitStatus('iso-1', 'AWAITING_SELECTION', rt);
    await until('the outbox to drain', async () =>
      (await client.query(UNPUBLISHED)).rowCount === 0 ? true : undefined,
    );
    const before = await row('iso-1');
    const eventCount = events.length;

    const attempts: Array<[string, Record<string, unknown>]> = [
      ['select', { blogId: 'iso-1', instanceId: 'intruder', ideaIndex: 0 }],
      ['cancel', { blogId: 'iso-1', instanceId: 'intruder' }],
      ['retry', { blogId: 'iso-1', instanceId: 'intruder' }],
      ['create', { blogId: 'iso-1', instanceId: 'intruder', topic: 'theft' }],
    ];
    for (const [name, body] of attempts) {
      const seen = rejections.length;
      await send(name, body);
      expect(await nextRejection(seen, `${name} by another store`)).toEqual(
        expect.objectContaining({
          subject: `${prefix}.${name}`,
          blogId: 'iso-1',
          instanceId: 'intruder',
          code: 'NOT_FOUND',
        }),
      );
    }
    // A missing blog and another store's blog are answered alike.
    const seen = rejections.length;
    await send('cancel', { blogId: 'iso-missing', instanceId: 'intruder' });
    const missing = await nextRejection(seen, 'cancel of a missing blog');
    const foreign = rejections.find((r) => r.subject === `${prefix}.cancel`)!;
    expect(foreign.message.replace('iso-1', 'X')).toBe(missing.message.replace('iso-missing', 'X'));

    const get = await http(rt.base, 'GET', '/api/blogs/iso-1?instanceId=intruder');
    expect(get.status).toBe(404);
    expect(get.body.error.code).toBe('NOT_FOUND');
    expect(JSON.stringify(get.body)).not.toContain('pottery');
    expect((await http(rt.base, 'GET', '/api/blogs/iso-1?instanceId=owner')).status).toBe(200);
    for (const name of ['cancel', 'select', 'retry']) {
      const res = await http(rt.base, 'POST', `/api/blogs/iso-1/${name}`, { instanceId: 'intruder', ideaIndex: 0 });
      expect(res.status, `${name} by another store`).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const list = await http(rt.base, 'GET', '/api/blogs?instanceId=intruder');
    if (list.status === 404 && String(list.body?.error?.message).startsWith('no route')) {
      // The list route does not exist yet: only this assertion is skipped.
      console.warn('GET /api/blogs is not implemented yet: store isolation of the list is not checked');
    } else {
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([]);
      const own = await http(rt.base, 'GET', '/api/blogs?instanceId=owner');
      expect(own.body.items.map((b: { blogId: string }) => b.blogId)).toEqual(['iso-1']);
    }

    await consumerSettled();
    expect(await row('iso-1'), 'the blog is unchanged').toEqual(before);
    expect(events.length, 'no status change').toBe(eventCount);
    // The owner still can.
    const cancel = await http(rt.base, 'POST', '/api/blogs/iso-1/cancel', { instanceId: 'owner' });
    expect(cancel.status).toBe(202);
    await waitStatus('iso-1', 'CANCELLED', rt);
  }, 60_000);

  // ---- 6 -------------------------------------------------------------------------------------------------

  it('redelivers a command that keeps failing for an infrastructure reason with a growing delay', async () => {
    const log = createLogger('silent', 'test');
    const bus = await connectNatsBus([nats.url], `test-consumer-${prefix}`, log);
    const deliveries: number[] = [];
    const handler = {
      handle: () => {
        deliveries.push(Date.now());
        return Promise.resolve({ kind: 'retry' as const, error: new Error('database down') });
      },
    } satisfies CommandHandler;
    const consumer = startCommandConsumer({
      bus,
      names: { ...streams, consumer: consumerName },
      subjects: subjectsFor(prefix),
      handler,
      log,
    });
    cleanups.push(async () => {
      await consumer.stop();
      await bus.close();
    });
    await until('the streams', async () => (await jsm.consumers.info(streams.commands, consumerName)) ?? undefined);
    const info = await jsm.consumers.info(streams.commands, consumerName);
    expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.All);

    await send('create', { blogId: 'spin-1', instanceId: 'store-z', idea }, 'spin-1');
    await until('the first delivery', async () => (deliveries.length > 0 ? true : undefined), 10_000, 10);
    await sleep(4_000);
    const n = deliveries.length;
    const gaps = deliveries.slice(1).map((t, i) => t - deliveries[i]!);
    expect(n, `deliveries in 4 s (gaps ${gaps.join(', ')} ms)`).toBeGreaterThanOrEqual(2);
    expect(n, `deliveries in 4 s (gaps ${gaps.join(', ')} ms)`).toBeLessThanOrEqual(5);
    expect(gaps[0]!).toBeGreaterThanOrEqual(400);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!, `gap ${i} grows`).toBeGreaterThan(gaps[i - 1]! * 1.5);
  }, 30_000);

  it('stops a command consumer at once, even while it is still starting', async () => {
    const log = createLogger('silent', 'test');
    const bus = await connectNatsBus([nats.url], `test-stop-${prefix}`, log);
    cleanups.push(() => bus.close());
    const handler = {
      handle: () => Promise.resolve({ kind: 'applied' as const }),
    } satisfies CommandHandler;
    const consumer = startCommandConsumer({
      bus,
      names: { ...streams, consumer: consumerName },
      subjects: subjectsFor(prefix),
      handler,
      log,
    });
    // A SIGTERM right after start: stop() must not wait for a consumer that starts after it was called.
    const stopped = await Promise.race([consumer.stop().then(() => true), sleep(5_000).then(() => false)]);
    expect(stopped, 'stop() resolved within 5 s').toBe(true);
  }, 15_000);
});
