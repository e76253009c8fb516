/**
 * One command message, from whatever transport: size and JSON checks, the shared intake, and the answer.
 * A command that cannot be applied is answered on `<prefix>.rejected` and counts as handled; only an
 * infrastructure failure (database down, bus down) asks the transport to deliver it again later.
 */
import { createHash } from 'node:crypto';
import { CommandError } from '../errors';
import { MAX_COMMAND_BYTES } from '../intake/command.schema';
import type { Intake } from '../intake/intake';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import type { Subjects } from './subjects';

/** What became of a command. */
export type CommandOutcome =
  { kind: 'applied' } | { kind: 'rejected'; code: string } | { kind: 'retry'; error: unknown };

/** Where a message came from, for deduplication. */
export interface CommandMeta {
  msgId?: string;
  streamSeq?: number;
  /** The message's W3C `traceparent` header. */
  traceparent?: string;
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
  const decoder = new TextDecoder('utf-8', { fatal: true });

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
        if (data.byteLength > MAX_COMMAND_BYTES) {
          return await reject(
            subject,
            undefined,
            'INVALID_PAYLOAD',
            `body is ${data.byteLength} bytes, over ${MAX_COMMAND_BYTES}`,
          );
        }
        try {
          body = JSON.parse(decoder.decode(data));
        } catch {
          return await reject(subject, undefined, 'INVALID_PAYLOAD', 'body is not UTF-8 JSON');
        }
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
