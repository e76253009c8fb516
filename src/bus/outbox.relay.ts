/**
 * Relays committed status events from the outbox to the bus, in order per blog, at least once. Most events leave by
 * the direct path (outbox.direct.ts) right after their commit and reach the relay as "sent ahead": then the relay
 * only moves its cursor past them. It runs when the direct path leaves an event to it (kicks 5 to 50 ms apart, by
 * rate, share one run), and every second as a sweep, which also picks up what a dead process committed but never
 * published. A run's events go out in waves (a blog's next event only after its previous one was acknowledged), and
 * committed events of transactions younger than one still running go out at once instead of waiting for it (see
 * outbox.repo.ts). Blogs never wait for it: it only carries news of what already happened.
 */
import type { OutboxRepo, RelayRow } from '../db/outbox.repo';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import { eventMsgId } from './outbox.direct';
import type { Subjects } from './subjects';

const BATCH = 500;
const SWEEP_MS = 1000;
const KEEP_PUBLISHED_MS = 24 * 3600 * 1000;
const AHEAD_MS = 60_000;
/**
 * Kicks closer together than the gap are served by one relay run. The gap follows the rate of events: while fewer
 * than BUSY_PER_SEC go out, a run may follow the previous one after MIN_GAP_MS, so events reach subscribers within
 * a few ms; above it runs are MAX_GAP_MS apart, fewer and fuller (a run costs five round trips whatever it carries:
 * CPU that the database and the runtime then lack for commits; at 500 selections/s a 5 ms gap made 200 runs a
 * second and tripled the selections' p99).
 */
const MIN_GAP_MS = 5;
const MAX_GAP_MS = 50;
const BUSY_PER_SEC = 100;
const gapAfter = (events: number, overMs: number) =>
  (events * 1000) / Math.max(overMs, MIN_GAP_MS) > BUSY_PER_SEC ? MAX_GAP_MS : MIN_GAP_MS;

/**
 * Creates the relay; `kick(blogId)` when an event was left to it, `sentAhead()` for one the direct path sent,
 * `stop()` at shutdown (one last relay first). `onPublished` hears of every event it published, in order per blog.
 *
 * With `freshMs`, an event written less than that long ago is the direct path's (it may be on its way, and the
 * direct path's word that it was sent may still be on its way too): the relay leaves it, and its cursor waits for it,
 * unless its blog was left to the relay (`kick(blogId)`) or the relay is stopping. Without it, a relay run may send
 * an event the direct path sent a moment before, and a subscriber of the subject see it again after the blog's next.
 */
export function createOutboxRelay(deps: {
  repo: OutboxRepo;
  bus: Bus;
  subjects: Subjects;
  log: Logger;
  onPublished?: (row: RelayRow) => void;
  freshMs?: number;
}) {
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let lastPrune = 0;
  let lastRun = 0;
  let scheduled: NodeJS.Timeout | undefined;
  let stopped = false;

  /**
   * Events published before the cursor passed them, by their `Nats-Msg-Id`, with when: by the direct path, or by a
   * run while their transaction was younger than one still running. The next runs leave them out of their reads
   * until they are settled, then the cursor passes them and they leave the set. One kept longer than AHEAD_MS (the
   * cursor held back that long, or another process's relay passed it) is forgotten: at worst it goes out once more.
   */
  const ahead = new Map<string, number>();
  const keyOf = (row: RelayRow) => eventMsgId(row.blogId, row.seq);
  /** Blogs left to the relay, with when: their events go out however young (for `freshMs` after the kick). */
  const leftToUs = new Map<string, number>();
  const freshMs = deps.freshMs ?? 0;
  const young = (row: RelayRow) => !stopped && row.ageMs < freshMs && !leftToUs.has(row.blogId);
  /** Whether the last `publish` let the cursor move (a settled row among those known published). */
  let moved = false;
  /** Events sent by the current relay transaction; events sent by the last run. */
  let fresh = 0;
  let carried = 0;
  let carriedOverMs = 0;

  /**
   * Publishes a batch in waves: wave k holds the k-th event of each blog in the batch, all sent at once (one round
   * trip for the wave's PubAcks, not one per event); a blog's next event leaves only after its previous one was
   * acknowledged, so no blog's events can overtake each other even across a reconnect. Returns how many rows, in
   * batch order, are known published: the cursor moves past those; anything after is sent again (the stream
   * deduplicates by `Nats-Msg-Id`, and delivery is at least once).
   */
  async function publish(rows: RelayRow[]): Promise<number> {
    const waves: RelayRow[][] = [];
    const nth = new Map<string, number>();
    for (const row of rows) {
      if (ahead.has(keyOf(row)) || young(row)) continue;
      const k = nth.get(row.blogId) ?? 0;
      nth.set(row.blogId, k + 1);
      (waves[k] ??= []).push(row);
    }
    const sent = new Set<RelayRow>();
    for (const wave of waves) {
      const results = await Promise.allSettled(
        wave.map((row) =>
          deps.bus.publish(deps.subjects.event(row.instanceId, row.blogId), row.payload, {
            durable: true,
            msgId: keyOf(row),
          }),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      results.forEach((r, i) => {
        if (r.status !== 'fulfilled') return;
        sent.add(wave[i]!);
        deps.onPublished?.(wave[i]!);
      });
      if (failed) {
        deps.log.warn(
          { err: failed.reason as unknown, sent: sent.size },
          'publishing events failed; the rest is retried',
        );
        break;
      }
    }
    fresh += sent.size;
    let prefix = rows.findIndex((row) => !sent.has(row) && !ahead.has(keyOf(row)));
    if (prefix === -1) prefix = rows.length;
    for (const [i, row] of rows.entries()) {
      if (i < prefix && row.settled) {
        ahead.delete(keyOf(row)); // the cursor moves past it
        moved = true;
      } else if (sent.has(row)) ahead.set(keyOf(row), Date.now()); // past a row left for now: not sent again
    }
    return prefix;
  }

  async function drain() {
    carried = 0;
    const old = Date.now() - AHEAD_MS;
    for (const [id, at] of ahead) if (at < old) ahead.delete(id);
    for (const [blogId, at] of leftToUs) if (at < Date.now() - freshMs) leftToUs.delete(blogId);
    for (;;) {
      fresh = 0;
      moved = false;
      const sent = await deps.repo.relay(BATCH, publish, [...ahead.keys()]);
      carried += fresh;
      // A full batch of events sent ahead that the cursor could not pass (held back by a long transaction) has
      // nothing new; one it passed may have more behind it.
      if (sent < BATCH || (fresh === 0 && !moved)) break;
    }
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await deps.repo.prune(new Date(Date.now() - KEEP_PUBLISHED_MS));
    }
  }

  function kick(blogId?: string) {
    if (blogId && freshMs > 0) leftToUs.set(blogId, Date.now());
    if (running) {
      again = true;
      return;
    }
    if (scheduled || stopped) return;
    const wait = lastRun + gapAfter(carried, carriedOverMs) - Date.now();
    if (wait > 0) {
      scheduled = setTimeout(() => {
        scheduled = undefined;
        kick();
      }, wait);
      return;
    }
    carriedOverMs = Date.now() - lastRun; // from the previous run's start to this one's
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
    sentAhead(msgId: string) {
      ahead.set(msgId, Date.now());
    },
    start() {
      timer = setInterval(() => kick(), SWEEP_MS);
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
