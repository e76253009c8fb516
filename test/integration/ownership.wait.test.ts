/**
 * A command that waits a long time for its store's owner is delivered once (needs PostgreSQL and NATS). With a
 * lease TTL of 40 s, process A takes a store and is killed; a `cancel` for a blog of that store reaches B over
 * JetStream (A consumes no commands). B cannot reach A and waits until A's lease runs out (about 40 s, longer than JetStream's ack wait),
 * takes the store and applies the command. Meanwhile B reports the message `working()`, so JetStream never
 * delivers it again: the consumer made one delivery, and the blog is cancelled once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ownershipTimings } from '../../src/runtime/ownership.timing';
import { http, killHard, startRuntime, testStreams, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const TTL_MS = 40_000;

await describeWithPostgres('a command waiting for its store owner (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  let nc: NatsConnection;
  const running: RuntimeProcess[] = [];
  const nts = testStreams(nats);
  // A runs without NATS: it holds the store through its lease in PostgreSQL but consumes no command, so the command
  // can only be delivered to B (a killed consumer's last pull could otherwise take it first, a redelivery by design).
  const start = async (nodeId: string, withNats: boolean) => {
    const rt = await startRuntime(
      {
        DATABASE_URL: db().url,
        ...(withNats ? nts.env() : {}),
        INKWELL_DATA_DIR: dataDir,
        INKWELL_NODE_ID: nodeId,
        INKWELL_LEASE_TTL_MS: String(TTL_MS),
        HARNESS_HOLD: '1',
        PORT: '0',
      },
      undefined,
      undefined,
      withNats ? [] : ['NATS_URL'],
    );
    running.push(rt);
    return rt;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-owner-wait-'));
    if (nats) nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await Promise.all(running.map(killHard));
    await nc?.close();
    await nts.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats)(
    'is not delivered again while it waits longer than the ack wait for a dead owner’s lease to run out',
    async () => {
      const timing = ownershipTimings(TTL_MS);
      const a = await start('owner-a', false);
      const b = await start('waiter-b', true);
      const jsm = await jetstreamManager(nc);
      const consumer = `inkwell_${nts.prefix}`;
      await until('the command consumer', () => jsm.consumers.info(nts.streams.cmd, consumer));
      expect((await jsm.consumers.info(nts.streams.cmd, consumer)).config.ack_wait).toBe(timing.ackWaitMs * 1e6);

      // A holds the store (its article call hangs, so the store is not given back idle), then dies.
      const created = await http(a.base, 'POST', '/api/blogs', {
        blogId: 'wait-1',
        instanceId: 'shop-wait',
        idea: { title: 'Held' },
        keywords: ['hold:article'],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      await until('the blog to be working at A', async () =>
        (await http(a.base, 'GET', '/api/blogs/wait-1')).body.status === 'GENERATING_CONTENT' ? true : undefined,
      );
      await killHard(a);

      const h = headers();
      h.set('Nats-Msg-Id', 'cancel-wait-1');
      const sentAt = Date.now();
      await jetstream(nc).publish(
        `${nts.prefix}.cancel`,
        JSON.stringify({ blogId: 'wait-1', instanceId: 'shop-wait' }),
        { headers: h },
      );
      await until(
        'B to apply the cancel once A’s lease ran out',
        async () => ((await http(b.base, 'GET', '/api/blogs/wait-1')).body.status === 'CANCELLED' ? true : undefined),
        TTL_MS + 20_000,
        250,
      );
      const waitedMs = Date.now() - sentAt;
      const info = await jsm.consumers.info(nts.streams.cmd, consumer);
      console.log(
        `[owner wait] cancel applied ${waitedMs} ms after it was sent (ack wait ${timing.ackWaitMs} ms); ` +
          `deliveries ${info.delivered.consumer_seq}`,
      );
      // The wait outlasted the ack wait: without working(), JetStream would have delivered the command again.
      expect(waitedMs).toBeGreaterThan(timing.ackWaitMs);
      // The consumer's sequence counts every delivery, redeliveries included; the stream holds this command only.
      expect(info.delivered.stream_seq).toBe(1);
      expect(info.delivered.consumer_seq, 'deliveries of the one command').toBe(1);
      await until('the command acked', async () =>
        (await jsm.consumers.info(nts.streams.cmd, consumer)).num_ack_pending === 0 ? true : undefined,
      );
      const blog = await http(b.base, 'GET', '/api/blogs/wait-1');
      expect(blog.body).toMatchObject({ status: 'CANCELLED', seq: 3 }); // PENDING, GENERATING_CONTENT, CANCELLED
    },
    TTL_MS + 60_000,
  );
});
