/**
 * Ack after commit (needs PostgreSQL and NATS): a command is answered (HTTP 202) and acknowledged (JetStream ack)
 * only once its effect is committed, so a process killed in between loses nothing: the command comes back and is
 * applied by the next process.
 *
 * The test holds a blog's commit open by locking its row (`select ... for update` in a transaction of its own):
 * the runtime's fenced UPDATE of that row waits for the lock. When the process is killed in that window, the test
 * ends the orphaned backend (`pg_terminate_backend`), as PostgreSQL does when it notices the client is gone, so
 * the UPDATE can never commit on the dead process's behalf.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http, killHard, startRuntime, testStreams, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
/** How long the test keeps a commit open before it looks at what was answered and acknowledged. */
const WINDOW_MS = 1500;

await describeWithPostgres('ack after commit (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  let nc: NatsConnection;
  const running: RuntimeProcess[] = [];
  const nts = testStreams(nats);
  const { prefix, streams } = nts;
  const consumer = `inkwell_${prefix.replace(/\./g, '_')}`;
  const start = async (nodeId: string) => {
    const rt = await startRuntime({
      DATABASE_URL: db().url,
      ...nts.env(),
      INKWELL_DATA_DIR: dataDir,
      INKWELL_NODE_ID: nodeId,
      INKWELL_LEASE_TTL_MS: '2000',
      PORT: '0',
    });
    running.push(rt);
    return rt;
  };
  const status = async (blogId: string) =>
    (
      (await client.query('select status from blogs where blog_id = $1', [blogId])).rows[0] as
        { status: string } | undefined
    )?.status;
  const awaitingSelection = async (rt: RuntimeProcess, blogId: string) => {
    const res = await http(rt.base, 'POST', '/api/blogs', { blogId, instanceId: 'ack-shop', topic: 'tea' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await until(`${blogId} awaits a selection`, async () =>
      (await status(blogId)) === 'AWAITING_SELECTION' ? true : undefined,
    );
  };
  /** Locks the blog's row in a transaction of its own; `release()` rolls it back. */
  const lockRow = async (blogId: string) => {
    const lock = new pg.Client({ connectionString: db().url });
    await lock.connect();
    await lock.query('begin');
    await lock.query('select 1 from blogs where blog_id = $1 for update', [blogId]);
    return {
      pid: ((await lock.query('select pg_backend_pid() as pid')).rows[0] as { pid: number }).pid,
      release: async () => {
        await lock.query('rollback').catch(() => undefined);
        await lock.end();
      },
    };
  };
  /** Backends waiting for the lock held by `lockPid`: the runtime's commit, held open. */
  const blockedBy = async (lockPid: number) =>
    (
      await client.query<{ pid: number }>('select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [
        lockPid,
      ])
    ).rows.map((r) => r.pid);
  const ackPending = async () =>
    (await (await jetstreamManager(nc)).consumers.info(streams.cmd, consumer)).num_ack_pending;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-ack-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
    if (nats) nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await client?.end();
    await nc?.close();
    await nts.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats)(
    'answers 202 only once the command’s transition is committed',
    async () => {
      const rt = await start('ack-a');
      await awaitingSelection(rt, 'http-held');
      const lock = await lockRow('http-held');
      let answered: number | undefined;
      const answer = http(rt.base, 'POST', '/api/blogs/http-held/select', {
        instanceId: 'ack-shop',
        ideaIndex: 0,
      }).then((res) => (answered = res.status));
      try {
        await until('the commit waits for the lock', async () =>
          (await blockedBy(lock.pid)).length > 0 ? true : undefined,
        );
        await new Promise((r) => setTimeout(r, WINDOW_MS));
        expect(answered, 'answered before the commit').toBeUndefined();
      } finally {
        await lock.release();
      }
      expect(await answer).toBe(202);
      expect(await status('http-held')).not.toBe('AWAITING_SELECTION');
    },
    60_000,
  );

  it.skipIf(!nats)(
    'acknowledges a JetStream command only once it is committed, and applies it after a kill in between',
    async () => {
      const first = running[0] ?? (await start('ack-a'));
      await awaitingSelection(first, 'nats-held');
      const lock = await lockRow('nats-held');
      try {
        const h = headers();
        h.set('Nats-Msg-Id', 'select-nats-held');
        const body = { blogId: 'nats-held', instanceId: 'ack-shop', ideaIndex: 0 };
        await jetstream(nc).publish(`${prefix}.select`, JSON.stringify(body), { headers: h }); // PubAck: stored
        await until('the commit waits for the lock', async () =>
          (await blockedBy(lock.pid)).length > 0 ? true : undefined,
        );
        await new Promise((r) => setTimeout(r, WINDOW_MS));
        expect(await ackPending(), 'acknowledged before the commit').toBe(1);
        await killHard(first);
        // The dead process's UPDATE must not commit later on its behalf: end its backend, as PostgreSQL would.
        for (const pid of await blockedBy(lock.pid)) await client.query('select pg_terminate_backend($1)', [pid]);
      } finally {
        await lock.release();
      }
      expect(await status('nats-held'), 'nothing was committed for the killed process').toBe('AWAITING_SELECTION');
      const second = await start('ack-b');
      // The unacknowledged command comes back after the consumer's ack wait (30 s) and is applied.
      await until(
        'the select applied after the restart',
        async () => ((await status('nats-held')) !== 'AWAITING_SELECTION' ? true : undefined),
        50_000,
        250,
      );
      expect(await ackPending()).toBe(0);
      void second;
    },
    120_000,
  );
});
