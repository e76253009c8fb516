/**
 * Relays committed status events from the outbox to the bus, in order, at least once. It runs right after each
 * commit of this process that carried events (kicks less than 50 ms apart share one run), and every second as a
 * sweep, which also picks up what a dead process committed but never published. Blogs never wait for it: it only
 * carries news of what already happened.
 */
import type { OutboxRepo, RelayRow } from '../db/outbox.repo';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import type { Subjects } from './subjects';

const BATCH = 500;
const SWEEP_MS = 1000;
const KEEP_PUBLISHED_MS = 24 * 3600 * 1000;
/**
 * Kicks closer together than this are served by one relay run: under load, fewer and fuller transactions (a run
 * costs five round trips whatever it carries; at 500 commits/s a 20 ms gap still made 40 runs a second).
 */
const MIN_GAP_MS = 50;

/** Creates the relay; `kick()` after a commit, `stop()` at shutdown (one last relay first). */
export function createOutboxRelay(deps: { repo: OutboxRepo; bus: Bus; subjects: Subjects; log: Logger }) {
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let lastPrune = 0;
  let lastRun = 0;
  let scheduled: NodeJS.Timeout | undefined;
  let stopped = false;

  async function publish(rows: RelayRow[]): Promise<number> {
    let sent = 0;
    try {
      for (const row of rows) {
        await deps.bus.publish(deps.subjects.event(row.instanceId, row.blogId), row.payload, {
          durable: true,
          msgId: `${row.blogId}:${row.seq}`,
        });
        sent++;
      }
    } catch (err) {
      deps.log.warn({ err, sent }, 'publishing events failed; the rest is retried');
    }
    return sent;
  }

  async function drain() {
    for (;;) {
      const sent = await deps.repo.relay(BATCH, publish);
      if (sent < BATCH) break;
    }
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await deps.repo.prune(new Date(Date.now() - KEEP_PUBLISHED_MS));
    }
  }

  function kick() {
    if (running) {
      again = true;
      return;
    }
    if (scheduled || stopped) return;
    const wait = lastRun + MIN_GAP_MS - Date.now();
    if (wait > 0) {
      scheduled = setTimeout(() => {
        scheduled = undefined;
        kick();
      }, wait);
      return;
    }
    lastRun = Date.now();
    running = drain()
      .catch((err: unknown) => deps.log.warn({ err }, 'outbox relay failed; retrying on the next sweep'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  return {
    kick,
    start() {
      timer = setInterval(kick, SWEEP_MS);
      timer.unref();
      kick();
    },
    async stop() {
      clearInterval(timer);
      stopped = true;
      clearTimeout(scheduled);
      scheduled = undefined;
      await running;
      await drain().catch((err: unknown) =>
        deps.log.warn({ err }, 'final outbox relay failed; the next process sends it'),
      );
    },
  };
}

/** The relay's interface. */
export type OutboxRelay = ReturnType<typeof createOutboxRelay>;
