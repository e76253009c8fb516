/**
 * The direct path of the outbox: status events go to the bus from the process that committed them, right after
 * the commit, instead of waiting for a relay run to read them back. The outbox stays the record and the relay the
 * guarantee; this only makes the usual case fast (one PubAck after the commit, not a relay transaction).
 *
 * Order per blog holds because an event leaves here only when its blog's previous event is known published: sent
 * here and acknowledged, or acknowledged to this process's relay. Anything else (the first event after a restore
 * or a takeover, a failed publish, the bus down) is left to the relay, which sends a blog's events in order and
 * tells this path when it did, so the blog comes back to the direct path from its next event. An event this path
 * sent is handed to the relay as "sent ahead": the relay does not send it again and moves its cursor past it. A
 * race between the two (both send the same event) costs a duplicate publish, which the stream drops by its
 * `Nats-Msg-Id`.
 */
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import type { Subjects } from './subjects';

/** One committed status event; without its payload (too large for a notice), it is left to the relay. */
export interface CommittedEvent {
  blogId: string;
  instanceId: string;
  seq: number;
  payload: Record<string, unknown> | null;
}

/** What the direct path needs of the relay. */
export interface RelayHandle {
  /** Makes the relay run soon: an event of `blogId` was left to it (its events go out however young they are). */
  kick(blogId?: string): void;
  /** An event this path published: the relay must not send it again, and may move its cursor past it. */
  sentAhead(msgId: string): void;
}

/** Statuses after which a blog sends nothing more for a while: its entry goes (a retry re-enters via the relay). */
const RESTING = new Set(['DONE', 'CANCELLED', 'FAILED']);

/** The stream's deduplication id of an event; the relay uses the same. */
export const eventMsgId = (blogId: string, seq: number) => `${blogId}:${seq}`;

/** Creates the direct path; `committed()` after every commit, `published()` from the relay's acknowledgements. */
export function createDirectPublisher(deps: {
  bus: Bus;
  subjects: Subjects;
  relay: RelayHandle;
  log: Logger;
  /** Seconds from the commit to the PubAck of each event sent here. */
  observe?: (seconds: number) => void;
}) {
  /** The last seq of each blog known to be in the stream, for blogs committed here and not resting. */
  const last = new Map<string, number>();
  /** Blogs with an event left to the relay: the relay's acknowledgements for them are wanted. */
  const deferred = new Set<string>();
  /** Per blog, the send in progress: a blog's next commit's events queue behind it. */
  const chains = new Map<string, Promise<void>>();

  function defer(blogId: string) {
    deferred.add(blogId);
    deps.relay.kick(blogId);
  }

  async function send(blogId: string, events: CommittedEvent[], committedAt: number) {
    for (const e of events) {
      if (!e.payload || (e.seq !== 1 && last.get(blogId) !== e.seq - 1)) return defer(blogId);
      const msgId = eventMsgId(blogId, e.seq);
      try {
        await deps.bus.publish(deps.subjects.event(e.instanceId, blogId), e.payload, { durable: true, msgId });
      } catch (err) {
        deps.log.debug({ err, blogId, seq: e.seq }, 'direct publish failed; the relay sends it');
        return defer(blogId);
      }
      deps.relay.sentAhead(msgId);
      deps.observe?.((Date.now() - committedAt) / 1000);
      if (RESTING.has(String(e.payload.status))) {
        last.delete(blogId);
        deferred.delete(blogId);
      } else last.set(blogId, e.seq);
    }
  }

  return {
    /** Events just committed, in order per blog: sends each blog's at once, behind its previous send. */
    committed(events: readonly CommittedEvent[]) {
      if (events.length === 0) return;
      const committedAt = Date.now();
      const byBlog = new Map<string, CommittedEvent[]>();
      for (const e of events) {
        const list = byBlog.get(e.blogId);
        if (list) list.push(e);
        else byBlog.set(e.blogId, [e]);
      }
      for (const [blogId, list] of byBlog) {
        const next = (chains.get(blogId) ?? Promise.resolve()).then(() => send(blogId, list, committedAt));
        chains.set(blogId, next);
        void next.finally(() => {
          if (chains.get(blogId) === next) chains.delete(blogId);
        });
      }
    },
    /** The relay published `seq` of `blogId` (it sends a blog's events in order: every earlier one is out too). */
    published(blogId: string, seq: number, status: unknown) {
      if (!deferred.has(blogId) && !last.has(blogId)) return; // not a blog of this process's commits
      if (RESTING.has(String(status))) {
        last.delete(blogId);
        deferred.delete(blogId);
        return;
      }
      if ((last.get(blogId) ?? 0) < seq) last.set(blogId, seq);
      deferred.delete(blogId);
    },
    /** Resolves when every send in progress has ended. */
    async settle(): Promise<void> {
      while (chains.size > 0) await Promise.allSettled([...chains.values()]);
    },
    /** Blogs tracked, for tests and metrics. */
    size: () => last.size + deferred.size,
  };
}

/** The direct path's interface. */
export type DirectPublisher = ReturnType<typeof createDirectPublisher>;
