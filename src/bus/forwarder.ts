/**
 * Forwarding commands to the process that holds a store: any process may receive a command (the durable
 * consumer is shared, HTTP may hit any node), but only the store's owner applies it. Request-reply over core
 * NATS on `<prefix>.nodes.<nodeId>`; no stream involved, the caller acks its own message only after the reply.
 * The trace goes along as a W3C `traceparent` NATS header: the owner's command span continues the forward's span.
 */
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { CommandError, InkwellError, type CommandErrorCode } from '../errors';
import type { ApplyOptions, CommandResult } from '../intake/intake';
import type { CommandName } from '../intake/command.schema';
import type { Forwarder } from '../intake/forward.port';
import type { Logger } from '../logger';
import { inForwardSpan } from '../telemetry/spans';

/** A forwarded command. */
interface Forwarded {
  name: CommandName;
  body: unknown;
  opts: ApplyOptions;
}

/** The owner's answer. */
type Reply = { ok: CommandResult } | { error: { code: string; message: string; command: boolean } };

/** The subject token of a node id (NATS tokens cannot hold dots or spaces). */
export const nodeToken = (nodeId: string) => nodeId.replace(/[^A-Za-z0-9_-]/g, '_');

/** Creates the forwarder over `nc`; a forwarded command waits `timeoutMs` for the owner's answer. */
export function createForwarder(
  nc: NatsConnection,
  prefix: string,
  nodeId: string,
  log: Logger,
  timeoutMs: number,
): Forwarder {
  const subjectOf = (node: string) => `${prefix}.nodes.${nodeToken(node)}`;
  const encoder = new TextEncoder();
  return {
    serve(apply) {
      const sub = nc.subscribe(subjectOf(nodeId), {
        callback: (err, msg) => {
          if (err) return;
          const { name, body, opts } = msg.json<Forwarded>();
          const traceparent = msg.headers?.get('traceparent');
          void apply(name, body, { ...opts, forwarded: true, ...(traceparent ? { traceparent } : {}) })
            .then((ok): Reply => ({ ok }))
            .catch((e: unknown): Reply => ({
              error: {
                code: e instanceof InkwellError ? e.code : 'INTERNAL',
                message: e instanceof Error ? e.message : String(e),
                command: e instanceof CommandError,
              },
            }))
            .then((reply) => msg.respond(encoder.encode(JSON.stringify(reply))));
        },
      });
      return () => sub.unsubscribe();
    },
    forward(owner, name, body, opts) {
      const { traceparent: callers, ...rest } = opts;
      return inForwardSpan(name, owner, callers, async (traceparent) => {
        const h = headers();
        if (traceparent) h.set('traceparent', traceparent);
        let reply: Reply;
        try {
          const payload = JSON.stringify({ name, body, opts: rest });
          const msg = await nc.request(subjectOf(owner), payload, { timeout: timeoutMs, headers: h });
          reply = msg.json<Reply>();
        } catch (err) {
          log.warn({ err, owner }, 'store owner did not answer a forwarded command');
          throw new InkwellError('OWNER_UNREACHABLE', `the process holding this store (${owner}) did not answer`, true);
        }
        if ('ok' in reply) return reply.ok;
        if (reply.error.command) throw new CommandError(reply.error.code as CommandErrorCode, reply.error.message);
        throw new InkwellError(reply.error.code, reply.error.message, true);
      });
    },
  };
}

export type { Forwarder } from '../intake/forward.port';
