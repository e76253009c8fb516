/**
 * The main thread's side of the events thread (`event.worker.ts`): starts it, hands it what the relay published
 * and takes back what it sent, so the relay neither sends those again nor holds its cursor for them. The runtime
 * uses it when it runs on PostgreSQL and NATS; the thread is started again if it ever dies (meanwhile the relay
 * sends every event).
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../logger';
import type { RelayHandle } from './outbox.direct';

/** What the thread is started with. */
export interface EventThreadData {
  /** The subject prefix (`INKWELL_SUBJECT_PREFIX`). */
  prefix: string;
  databaseUrl: string;
  natsServers: string[];
  /** Its NATS connection's name. */
  name: string;
  /** The PostgreSQL channel the blog repository announces outbox rows on. */
  channel: string;
  logLevel: string;
}

/** Messages to the thread: what the relay published (blog, seq, status), settle, stop. */
export type ToThread =
  { type: 'published'; list: Array<[string, number, unknown]> } | { type: 'settle'; id: number } | { type: 'stop' };

/** Messages from the thread. */
export type FromThread =
  | { type: 'listening' }
  | { type: 'ahead'; ids: string[]; seconds: number[] }
  | { type: 'kick'; blogs: string[] }
  | { type: 'settled'; id: number }
  | { type: 'stopped' }
  | { type: 'log'; line: string };

const READY_MS = 10_000;
const RESTART_MS = 1_000;

/** The worker's entry beside this module: compiled JavaScript, or TypeScript through tsx (tests, `npm run dev`). */
function spawnWorker(workerData: EventThreadData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./event.worker.js', here), { workerData });
  const entry = new URL('./event.worker.ts', here).href;
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** Creates the handle; nothing runs until `start()`. */
export function createEventThread(deps: {
  data: EventThreadData;
  relay: RelayHandle;
  log: Logger;
  /** Seconds from each event's commit to its PubAck. */
  observe?: (seconds: number) => void;
}) {
  const log = deps.log.child({ thread: 'events' });
  let worker: Worker | undefined;
  let stopped = false;
  let published: Array<[string, number, unknown]> = [];
  let settles = 0;
  const settling = new Map<number, () => void>();
  let onStopped: (() => void) | undefined;
  let onListening: (() => void) | undefined;

  function onMessage(message: FromThread) {
    switch (message.type) {
      case 'listening':
        onListening?.();
        break;
      case 'ahead':
        for (const id of message.ids) deps.relay.sentAhead(id);
        for (const s of message.seconds) deps.observe?.(s);
        break;
      case 'kick':
        for (const blogId of message.blogs) deps.relay.kick(blogId);
        if (message.blogs.length === 0) deps.relay.kick();
        break;
      case 'settled':
        settling.get(message.id)?.();
        settling.delete(message.id);
        break;
      case 'stopped':
        onStopped?.();
        break;
      case 'log': {
        const { level, msg, ...rest } = JSON.parse(message.line) as { level: number; msg?: string };
        const method = (['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const)[Math.floor(level / 10) - 1];
        if (method) log[method](rest, msg);
        break;
      }
    }
  }

  function run() {
    const w = spawnWorker(deps.data);
    worker = w;
    w.on('message', onMessage);
    w.on('error', (err) => log.error({ err }, 'events thread failed'));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      for (const resolve of settling.values()) resolve();
      settling.clear();
      if (stopped) return onStopped?.();
      log.error({ code }, 'events thread exited; the relay sends every event until it is back');
      deps.relay.kick();
      setTimeout(() => stopped || run(), RESTART_MS).unref();
    });
  }

  const send = (message: ToThread) => worker?.postMessage(message);

  return {
    /** Starts the thread; resolves once it listens (or after READY_MS: the relay sends until it does). */
    async start() {
      const listening = new Promise<void>((resolve) => {
        onListening = resolve;
        setTimeout(resolve, READY_MS).unref();
      });
      run();
      await listening;
    },
    /** The relay published `seq` of `blogId` (handed over once per turn of the event loop). */
    published(blogId: string, seq: number, status: unknown) {
      if (published.push([blogId, seq, status]) > 1) return;
      setImmediate(() => {
        send({ type: 'published', list: published });
        published = [];
      });
    },
    /** Resolves when every send the thread has in progress has ended. */
    settle(): Promise<void> {
      if (!worker) return Promise.resolve();
      const id = ++settles;
      return new Promise((resolve) => {
        settling.set(id, resolve);
        send({ type: 'settle', id });
      });
    },
    /** Stops the thread (its sends end first). */
    async stop() {
      stopped = true;
      const w = worker;
      if (!w) return;
      const done = new Promise<void>((resolve) => (onStopped = resolve));
      send({ type: 'stop' });
      const killer = setTimeout(() => void w.terminate(), 5_000);
      await done;
      clearTimeout(killer);
      await w.terminate();
    },
  };
}

/** The events thread's handle. */
export type EventThread = ReturnType<typeof createEventThread>;

/** A channel name for one process's notices of outbox rows. */
export const eventChannel = () => `inkwell_events_${randomBytes(6).toString('hex')}`;
