/**
 * How status events leave after their commit, as the runtime wires it: the relay (`outbox.relay.ts`, the guarantee)
 * and beside it the direct path, either the events thread (`event.thread.ts`, when the runtime runs on PostgreSQL
 * and NATS) or this thread's direct publisher (`outbox.direct.ts`, told of each commit through `committed`).
 */
import type { OutboxRepo } from '../db/outbox.repo';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import { createEventThread, type EventThreadData } from './event.thread';
import { createDirectPublisher, type CommittedEvent } from './outbox.direct';
import { createOutboxRelay } from './outbox.relay';
import type { Subjects } from './subjects';

/**
 * How long an event is the direct path's alone: the relay sends it only once it is older (or left to it), so that it
 * does not send again, later, what the direct path sent a moment before (`freshMs` in outbox.relay.ts).
 */
const FRESH_MS = 1_000;

/** Creates the relay and the direct path; `start()` the direct path before the first commit. */
export function createEventPath(deps: {
  outbox: OutboxRepo;
  bus: Bus;
  subjects: Subjects;
  log: Logger;
  /** Seconds from an event's commit to its PubAck, for each event sent by the direct path. */
  observe: (seconds: number) => void;
  thread?: EventThreadData | undefined;
}) {
  const { bus, subjects, log, observe } = deps;
  const relay = createOutboxRelay({
    repo: deps.outbox,
    bus,
    subjects,
    log,
    onPublished: (row) => direct.published(row.blogId, row.seq, (row.payload as { status?: unknown }).status),
    freshMs: FRESH_MS,
  });
  const thread = deps.thread ? createEventThread({ data: deps.thread, relay, log, observe }) : undefined;
  const local = thread ? undefined : createDirectPublisher({ bus, subjects, relay, log, observe });
  const direct = thread ?? local!;
  return {
    relay,
    /** Events just committed, for this thread's direct publisher; undefined with the events thread. */
    committed: local ? (events: readonly CommittedEvent[]) => local.committed(events) : undefined,
    start: async () => thread?.start(),
    /** Once nothing more is committed: the direct path's sends end, the relay sends the rest, the thread stops. */
    async stop() {
      await direct.settle();
      await relay.stop();
      await thread?.stop();
    },
  };
}
