/** Talking to Inkwell over NATS: create a blog from a topic, pick the first idea, follow it to DONE. */
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';

const prefix = process.env.INKWELL_SUBJECT_PREFIX ?? 'blogs';
const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
const js = jetstream(nc);
const [instanceId, blogId] = ['my-store', randomUUID()];

// JetStream publish: the PubAck means the command is stored; the same Nats-Msg-Id on a retry is stored once.
async function send(command: string, body: object, msgId: string) {
  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  return js.publish(`${prefix}.${command}`, JSON.stringify({ blogId, instanceId, ...body }), { headers: h });
}

const events = nc.subscribe(`${prefix}.events.${instanceId}.${blogId}`); // before the create: no event is missed
const ack = await send('create', { topic: 'Brewing great coffee at home' }, `${blogId}-create`);
console.log(`create stored: stream=${ack.stream} seq=${ack.seq} duplicate=${ack.duplicate}`);

let lastSeq = 0; // delivery is at least once: skip what was already seen
for await (const m of events) {
  const e = m.json<{ status: string; seq: number; ideas?: { title: string }[]; post?: { url?: string } }>();
  if (e.seq <= lastSeq) continue;
  lastSeq = e.seq;
  console.log(`#${e.seq} ${e.status}${e.post?.url ? ` ${e.post.url}` : ''}`);
  if (e.status === 'AWAITING_SELECTION') {
    console.log(`selecting "${e.ideas?.[0]?.title}"`);
    await send('select', { ideaIndex: 0 }, `${blogId}-select`);
  }
  if (['DONE', 'FAILED', 'CANCELLED'].includes(e.status)) {
    await nc.drain();
    process.exit(e.status === 'DONE' ? 0 : 1);
  }
}
