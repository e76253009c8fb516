/**
 * Commands over NATS: the durable JetStream consumer shared by every runtime process, and the handling of one
 * command message. Messages are handled concurrently, but the commands of one blog in arrival order (their store's
 * shard then applies its commands in order); the body is decoded once (size, UTF-8 JSON), and a command that cannot
 * be applied is answered on `<prefix>.rejected` and acked. A message is acked only after its effect is committed (or
 * it was answered as rejected), and nak'ed with a growing delay when the infrastructure failed (database down, bus
 * down), so it never spins.
 */
import { createHash } from 'node:crypto';
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { CommandError } from '../errors';
import { MAX_COMMAND_BYTES } from '../intake/command.schema';
import type { Intake } from '../intake/intake';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import type { NatsBus } from './nats.bus';
import { ensureStreams, type StreamNames } from './jetstream.streams';
import type { Subjects } from './subjects';

/** What became of a command. */
export type CommandOutcome =
  { kind: 'applied' } | { kind: 'rejected'; code: string } | { kind: 'retry'; error: unknown };

/** Where a message came from, for deduplication; and its body, when the transport decoded it already. */
export interface CommandMeta {
  msgId?: string;
  streamSeq?: number;
  /** The message's W3C `traceparent` header. */
  traceparent?: string;
  /** The body as `decodeBody` read it (the consumer orders by it): not decoded a second time. */
  decoded?: Decoded;
}

/** A command body as JSON, or why it is not (UTF-8 JSON of at most `MAX_COMMAND_BYTES`). */
export type Decoded = { body: unknown } | { invalid: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Reads a command body once: its size, then its JSON. */
export function decodeBody(data: Uint8Array): Decoded {
  if (data.byteLength > MAX_COMMAND_BYTES) {
    return { invalid: `body is ${data.byteLength} bytes, over ${MAX_COMMAND_BYTES}` };
  }
  try {
    return { body: JSON.parse(decoder.decode(data)) };
  } catch {
    return { invalid: 'body is not UTF-8 JSON' };
  }
}

/**
 * The blogId of a `create` that names none: derived from the message, so a redelivery (or a re-publish with the
 * same `Nats-Msg-Id`, even after the duplicate window) creates the same blog instead of a second one.
 */
export function blogIdForMessage(meta: CommandMeta): string | undefined {
  const key = meta.msgId ? `msg:${meta.msgId}` : meta.streamSeq !== undefined ? `seq:${meta.streamSeq}` : undefined;
  if (!key) return undefined;
  const h = createHash('sha1').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function fieldsOf(body: unknown): { blogId?: string; instanceId?: string } {
  if (!body || typeof body !== 'object') return {};
  const { blogId, instanceId } = body as Record<string, unknown>;
  return {
    ...(typeof blogId === 'string' ? { blogId: blogId.slice(0, 64) } : {}),
    ...(typeof instanceId === 'string' ? { instanceId: instanceId.slice(0, 64) } : {}),
  };
}

/** Creates the handler. */
export function createCommandHandler(deps: { intake: Intake; bus: Bus; subjects: Subjects; log: Logger }) {
  async function reject(subject: string, body: unknown, code: string, message: string): Promise<CommandOutcome> {
    const payload = { subject, ...fieldsOf(body), code, message, at: new Date().toISOString() };
    deps.log.warn({ ...payload }, `command rejected: ${code}`);
    await deps.bus.publish(deps.subjects.rejected, payload);
    return { kind: 'rejected', code };
  }

  return {
    async handle(subject: string, data: Uint8Array, meta: CommandMeta = {}): Promise<CommandOutcome> {
      let body: unknown;
      try {
        const name = deps.subjects.commandOf(subject);
        if (!name) return await reject(subject, undefined, 'INVALID_PAYLOAD', `unknown command subject ${subject}`);
        const decoded = meta.decoded ?? decodeBody(data);
        if ('invalid' in decoded) return await reject(subject, undefined, 'INVALID_PAYLOAD', decoded.invalid);
        body = decoded.body;
        const blogIdHint = name === 'create' ? blogIdForMessage(meta) : undefined;
        await deps.intake.apply(name, body, {
          ...(blogIdHint ? { blogIdHint } : {}),
          ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
        });
        return { kind: 'applied' };
      } catch (err) {
        if (err instanceof CommandError) {
          try {
            return await reject(subject, body, err.code, err.message);
          } catch (publishErr) {
            return { kind: 'retry', error: publishErr };
          }
        }
        return { kind: 'retry', error: err };
      }
    },
  };
}

/** The command handler's interface. */
export type CommandHandler = ReturnType<typeof createCommandHandler>;

const CONCURRENCY = 64;

/** Delay before a failed command is delivered again: 0.5 s doubling to 30 s. */
export function redeliveryDelay(deliveryCount: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveryCount - 1));
}

/** The blog a message's commands are ordered by (a bad body is rejected: no ordering needed). */
function orderingKey(m: JsMsg, decoded: Decoded): string {
  const blogId = 'body' in decoded ? (decoded.body as { blogId?: unknown } | null)?.blogId : undefined;
  return typeof blogId === 'string' ? blogId : `seq:${m.seq}`;
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

  async function handle(m: JsMsg, decoded: Decoded) {
    const outcome = await deps.handler.handle(m.subject, m.data, {
      decoded,
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
    const decoded = decodeBody(m.data);
    const key = orderingKey(m, decoded);
    // In hand from now until acked: however long it waits (its blog's turn, its store's owner), JetStream must not
    // deliver it again meanwhile.
    const working = deps.timing ? setInterval(() => m.working(), deps.timing.workingEveryMs) : undefined;
    const next = (chains.get(key) ?? Promise.resolve())
      .then(() => handle(m, decoded))
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
