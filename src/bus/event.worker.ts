/**
 * The events thread (started by `event.thread.ts`): the direct path of the outbox on a thread of its own, so that
 * a status event leaves as soon as PostgreSQL commits it, however busy the runtime's main thread is with its actors.
 *
 * It listens on the PostgreSQL channel the runtime's blog repository announces its outbox rows on (`notify` in
 * blog.repo.ts): a notice arrives when the statement that wrote the row commits, in commit order, and the event goes
 * to JetStream through this thread's own NATS connection, by the same direct publisher (`outbox.direct.ts`) and
 * with the same rule: a blog's event leaves only when its previous one is known published, else it is left to the
 * relay (on the main thread), which sends it in order and tells this thread so. What this thread misses (its
 * connection to PostgreSQL or NATS lost, a payload too large for a notice) is the relay's to send: it is kicked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import pino from 'pino';
import type { OutboxNotice } from '../db/outbox.notice';
import { describeConnectionError } from '../errors';
import { connectNatsBus } from './nats.bus';
import { createDirectPublisher } from './outbox.direct';
import { subjectsFor } from './subjects';
import type { EventThreadData, FromThread, ToThread } from './event.thread';

const data = workerData as EventThreadData;
const port = parentPort!;
const post = (message: FromThread) => port.postMessage(message);

// Log lines go to the main thread, which writes them with its own logger.
const log = pino(
  { level: data.logLevel, base: null, timestamp: false },
  { write: (line: string) => post({ type: 'log', line }) },
);

/** Events sent and their commit → PubAck times, handed to the main thread once per turn of the event loop. */
let ahead: string[] = [];
let seconds: number[] = [];
/** Blogs whose events were left to the relay. */
let left = new Set<string>();
let flushing = false;
function flush() {
  flushing = false;
  if (ahead.length > 0) post({ type: 'ahead', ids: ahead, seconds });
  if (left.size > 0) post({ type: 'kick', blogs: [...left] });
  ahead = [];
  seconds = [];
  left = new Set();
}
function flushSoon() {
  if (flushing) return;
  flushing = true;
  setImmediate(flush);
}

const bus = await connectNatsBus(data.natsServers, data.name, log);
const direct = createDirectPublisher({
  bus,
  subjects: subjectsFor(data.prefix),
  log,
  relay: {
    kick(blogId) {
      if (blogId) left.add(blogId);
      flushSoon();
    },
    sentAhead(msgId) {
      ahead.push(msgId);
      flushSoon();
    },
  },
  observe(s) {
    seconds.push(s);
    flushSoon();
  },
});

let stopping = false;
let listener: pg.Client | undefined;

function onNotice(msg: pg.Notification) {
  if (!msg.payload) return;
  const [blogId, instanceId, seq, payload] = JSON.parse(msg.payload) as OutboxNotice;
  direct.committed([{ blogId, instanceId, seq, payload }]);
}

/** Listens on the channel, again after every lost connection; what was committed meanwhile is the relay's. */
async function listen() {
  for (let failures = 0; !stopping;) {
    const client = new pg.Client({ connectionString: data.databaseUrl });
    const lost = new Promise<unknown>((resolve) => {
      client.on('error', resolve);
      client.on('end', () => resolve(undefined));
    });
    try {
      await client.connect();
      client.on('notification', onNotice);
      await client.query(`listen "${data.channel}"`);
      listener = client;
      failures = 0;
      post({ type: 'listening' });
      post({ type: 'kick', blogs: [] }); // whatever was committed before this LISTEN
      const err = await lost;
      if (!stopping)
        log.warn(
          { err: describeConnectionError(err) },
          'events thread lost its PostgreSQL connection; the relay sends',
        );
    } catch (err) {
      failures++;
      log.warn({ err: describeConnectionError(err), failures }, 'events thread cannot listen on PostgreSQL; retrying');
    }
    listener = undefined;
    await client.end().catch(() => undefined);
    if (!stopping) await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(failures, 6))));
  }
}

port.on('message', (message: ToThread) => {
  switch (message.type) {
    case 'published':
      for (const [blogId, seq, status] of message.list) direct.published(blogId, seq, status);
      break;
    case 'settle':
      // What was sent goes to the relay before the answer, so that its last run does not send it again.
      void direct.settle().then(() => (flush(), post({ type: 'settled', id: message.id })));
      break;
    case 'stop':
      stopping = true;
      void (async () => {
        await listener?.end().catch(() => undefined);
        await direct.settle();
        await bus.close();
        flush();
        post({ type: 'stopped' });
        port.close();
      })();
      break;
  }
});

void listen();
