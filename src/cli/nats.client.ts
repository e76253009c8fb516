/**
 * The CLI's side of the NATS contract: commands are published through JetStream with a `Nats-Msg-Id`, and the
 * `<prefix>.rejected` answer for the same blog is watched for a short while after the PubAck.
 */
import { randomUUID } from 'node:crypto';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { blogIdForMessage } from '../bus/command.consumer';
import type { CommandRequest } from './requests';
import { CliFailure } from './usage';

/** What a published command came to. */
export interface PublishResult {
  command: string;
  blogId: string;
  instanceId: string;
  msgId: string;
  pubAck: { stream: string; seq: number; duplicate: boolean };
  /** The `<prefix>.rejected` body, when one came for this command within the wait. */
  rejected?: Record<string, unknown>;
}

/** Connects, turning a failure into one line; `follow` keeps reconnecting (for tail). */
export async function connectNats(servers: string[], follow = false): Promise<NatsConnection> {
  try {
    return await connect({
      servers,
      name: 'inkwell-cli',
      timeout: 5000,
      ...(follow ? { maxReconnectAttempts: -1 } : { reconnect: false }),
    });
  } catch (err) {
    throw new CliFailure(`cannot connect to NATS at ${servers.join(',')}: ${(err as Error).message}`);
  }
}

function matches(rejection: Record<string, unknown>, subject: string, body: Record<string, unknown>): boolean {
  return (
    rejection.subject === subject &&
    rejection.blogId === body.blogId &&
    (rejection.instanceId === undefined || rejection.instanceId === body.instanceId)
  );
}

/** Publishes `request` on `<prefix>.<name>`; resolves after the PubAck and up to `waitMs` of watching for a rejection. */
export async function sendCommandNats(
  nc: NatsConnection,
  prefix: string,
  request: CommandRequest,
  opts: { msgId?: string; waitMs: number },
): Promise<PublishResult> {
  const msgId = opts.msgId ?? randomUUID();
  // A create without a blogId gets the one the runtime would derive from the msg id, so retries name the same blog.
  const body = { ...request.body };
  if (request.name === 'create' && body.blogId === undefined) body.blogId = blogIdForMessage({ msgId });
  const subject = `${prefix}.${request.name}`;

  let found: ((r: Record<string, unknown>) => void) | undefined;
  const rejection = new Promise<Record<string, unknown>>((resolve) => (found = resolve));
  // Subscribed before publishing, so a fast rejection is not missed.
  const sub = nc.subscribe(`${prefix}.rejected`, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const r = msg.json<Record<string, unknown>>();
        if (matches(r, subject, body)) found?.(r);
      } catch {
        /* not ours */
      }
    },
  });
  await nc.flush();

  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  let ack;
  try {
    ack = await jetstream(nc, { timeout: 10_000 }).publish(subject, JSON.stringify(body), { headers: h });
  } catch (err) {
    sub.unsubscribe();
    // nats.js reports "no responders" (no stream captures the subject) as "jetstream is not enabled".
    const hint = /no responders|503|not enabled/i.test(String(err))
      ? ` (no stream captures ${subject}: has Inkwell started on this NATS with prefix "${prefix}"?)`
      : '';
    throw new CliFailure(`publishing ${subject} failed: ${(err as Error).message}${hint}`);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), opts.waitMs)));
  const rejected = opts.waitMs > 0 ? await Promise.race([rejection, timeout]) : undefined;
  clearTimeout(timer);
  sub.unsubscribe();
  return {
    command: request.name,
    blogId: String(body.blogId),
    instanceId: String(body.instanceId),
    msgId,
    pubAck: { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate },
    ...(rejected ? { rejected } : {}),
  };
}
