/**
 * A subscriber of the real-path benchmark in a process of its own, as another service would be: it only receives
 * the status events of `--subject` and notes when each arrived (`Date.now()`, the same clock as PostgreSQL's on this
 * machine). The load generator's own subscriber shares its process with 200 blogs' worth of commands and bookkeeping;
 * this one measures what a subscriber with nothing else to do sees. Prints `{ ready: true }` once subscribed and, on
 * SIGUSR2, `{ received: [[blogId, seq, receivedAt], ...] }` (first receipt of each event), then exits.
 *
 * Env: NATS_URL.
 */
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';

const { values } = parseArgs({ options: { subject: { type: 'string' } } });
if (!values.subject || !process.env.NATS_URL) throw new Error('--subject and NATS_URL are required');
const nc = await connect({ servers: process.env.NATS_URL });
const received = new Map<string, [string, number, number]>();
nc.subscribe(values.subject, {
  callback: (_err, msg) => {
    const at = Date.now();
    const { blogId, seq } = msg.json<{ blogId: string; seq: number }>();
    const key = `${blogId}:${seq}`;
    if (!received.has(key)) received.set(key, [blogId, seq, at]);
  },
});
await nc.flush();
process.once('SIGUSR2', () => {
  console.log(JSON.stringify({ received: [...received.values()] }));
  void nc.close().then(() => process.exit(0));
});
console.log(JSON.stringify({ ready: true }));
