/**
 * The durable JetStream consumer shared by every runtime process. Messages are handled concurrently, but the
 * commands of one blog in arrival order; a message is acked only after its effect is committed (or it was
 * answered as rejected), and nak'ed with a growing delay when the infrastructure failed, so it never spins.
 */
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../logger';
import type { CommandHandler } from './command.handler';
import type { NatsBus } from './nats.bus';
import { ensureStreams, type StreamNames } from './jetstream.streams';
import type { Subjects } from './subjects';

const CONCURRENCY = 64;

/** Delay before a failed command is delivered again: 0.5 s doubling to 30 s. */
export function redeliveryDelay(deliveryCount: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveryCount - 1));
}

function orderingKey(m: JsMsg): string {
  try {
    const blogId = (JSON.parse(new TextDecoder().decode(m.data)) as { blogId?: unknown }).blogId;
    if (typeof blogId === 'string') return blogId;
  } catch {
    /* bad JSON: the handler rejects it; no ordering needed */
  }
  return `seq:${m.seq}`;
}

/** Starts consuming; `stop()` stops pulling and waits for the commands in hand. */
export function startCommandConsumer(deps: {
  bus: NatsBus;
  names: StreamNames;
  subjects: Subjects;
  handler: CommandHandler;
  log: Logger;
  /** The consumer's ack wait, and how often a command in hand is reported `working()` (see `ownershipTimings`). */
  timing?: { ackWaitMs: number; workingEveryMs: number };
}) {
  const inFlight = new Set<Promise<void>>();
  const chains = new Map<string, Promise<void>>();
  let messages: ConsumerMessages | undefined;
  let stopped = false;

  async function handle(m: JsMsg) {
    const outcome = await deps.handler.handle(m.subject, m.data, {
      ...(m.headers?.get('Nats-Msg-Id') ? { msgId: m.headers.get('Nats-Msg-Id') } : {}),
      streamSeq: m.seq,
      ...(m.headers?.get('traceparent') ? { traceparent: m.headers.get('traceparent') } : {}),
    });
    if (outcome.kind === 'retry') {
      const delay = redeliveryDelay(m.info.deliveryCount);
      deps.log.error(
        { err: outcome.error, subject: m.subject, delivery: m.info.deliveryCount, delay },
        'command failed; redelivering later',
      );
      m.nak(delay);
    } else {
      m.ack();
    }
  }

  function dispatch(m: JsMsg) {
    const key = orderingKey(m);
    // In hand from now until acked: however long it waits (its blog's turn, its store's owner), JetStream must not
    // deliver it again meanwhile.
    const working = deps.timing ? setInterval(() => m.working(), deps.timing.workingEveryMs) : undefined;
    const next = (chains.get(key) ?? Promise.resolve())
      .then(() => handle(m))
      .catch((err: unknown) => {
        deps.log.error({ err }, 'command handling crashed');
        m.nak(redeliveryDelay(m.info.deliveryCount));
      });
    chains.set(key, next);
    inFlight.add(next);
    void next.finally(() => {
      clearInterval(working);
      inFlight.delete(next);
      if (chains.get(key) === next) chains.delete(key);
    });
  }

  async function run() {
    while (!stopped) {
      try {
        await ensureStreams(deps.bus.nc, deps.names, deps.subjects, deps.timing?.ackWaitMs);
        const consumer = await deps.bus.js.consumers.get(deps.names.commands, deps.names.consumer);
        messages = await consumer.consume({ max_messages: CONCURRENCY });
        // stop() during start-up found nothing to close: close it here, or the loop below never ends.
        // (Not awaited: close() resolves only once the loop has run to its end.)
        if (stopped) void messages.close().catch(() => undefined);
        for await (const m of messages) {
          dispatch(m);
          while (inFlight.size >= CONCURRENCY) await Promise.race(inFlight);
        }
      } catch (err) {
        if (!stopped) deps.log.error({ err }, 'command consumer failed; restarting in 1 s');
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const running = run();

  return {
    async stop(): Promise<void> {
      stopped = true;
      await messages?.close().catch(() => undefined);
      await Promise.allSettled([...inFlight]);
      await running;
    },
  };
}
