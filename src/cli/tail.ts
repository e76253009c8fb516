/** `inkwell tail`: follows `<prefix>.events...` live, or replays the events stream first with an ordered consumer. */
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CliFailure } from './usage';

/** What to follow and how to print it. */
export interface TailOptions {
  prefix: string;
  instanceId?: string;
  blogId?: string;
  json: boolean;
  fromStart: boolean;
  stream: string;
}

/** The subject (pattern) of the events asked for. */
export function eventSubject(o: Pick<TailOptions, 'prefix' | 'instanceId' | 'blogId'>): string {
  if (o.blogId !== undefined) return `${o.prefix}.events.${o.instanceId ?? '*'}.${o.blogId}`;
  return o.instanceId !== undefined ? `${o.prefix}.events.${o.instanceId}.>` : `${o.prefix}.events.>`;
}

interface EventBody {
  blogId?: string;
  instanceId?: string;
  status?: string;
  previousStatus?: string | null;
  seq?: number;
  at?: string;
  ideas?: unknown[];
  idea?: { title?: string };
  post?: { id?: string; url?: string };
  error?: { code?: string; stage?: string };
}

/** One line for an event: time, store, blog, previous → status, seq, then what came with it. */
export function formatEvent(raw: string): string {
  let e: EventBody;
  try {
    e = JSON.parse(raw) as EventBody;
  } catch {
    return `(not JSON) ${raw.slice(0, 200)}`;
  }
  const parts = [
    e.at ?? new Date().toISOString(),
    e.instanceId ?? '?',
    e.blogId ?? '?',
    `${e.previousStatus ?? '-'} → ${e.status ?? '?'}`,
    `seq=${e.seq ?? '?'}`,
  ];
  if (e.ideas) parts.push(`ideas=${e.ideas.length}`);
  if (e.idea?.title !== undefined) parts.push(`idea=${JSON.stringify(e.idea.title)}`);
  if (e.post) parts.push(e.post.url !== undefined ? `url=${e.post.url}` : `post=${e.post.id}`);
  if (e.error?.code !== undefined) parts.push(`error=${e.error.code}${e.error.stage ? `@${e.error.stage}` : ''}`);
  return parts.join('  ');
}

/** Follows events until SIGINT/SIGTERM; `write` gets each event's line, `note` one line once following. */
export async function tail(
  nc: NatsConnection,
  o: TailOptions,
  write: (line: string) => void,
  note: (line: string) => void,
): Promise<void> {
  const subject = eventSubject(o);
  const print = (data: Uint8Array) => {
    const raw = new TextDecoder().decode(data);
    write(o.json ? raw : formatEvent(raw));
  };
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());

  if (!o.fromStart) {
    const sub = nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : print(msg.data)) });
    await nc.flush();
    note(`following ${subject} (Ctrl-C to stop)`);
    await Promise.race([stopped, nc.closed()]);
    sub.unsubscribe();
    return;
  }
  let consumer;
  try {
    consumer = await jetstream(nc).consumers.get(o.stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.All,
    });
  } catch (err) {
    throw new CliFailure(`cannot replay stream ${o.stream}: ${(err as Error).message}`);
  }
  const messages = await consumer.consume();
  note(`replaying ${subject} from the start of ${o.stream}, then following (Ctrl-C to stop)`);
  void stopped.then(() => messages.stop());
  for await (const m of messages) print(m.data);
}
