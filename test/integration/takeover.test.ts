/**
 * Several processes (needs PostgreSQL and NATS): each store is advanced by one process at a time. A process
 * killed while holding blogs has them finished by another within the lease TTL plus a few seconds; one that
 * stops gracefully hands them over at once; a command sent to the wrong process is forwarded to the owner.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fleetProblems, publishAttempts, settledEventProblems, statuses } from '../support/fleet.check';
import { http, killHard, startRuntime, testStreams, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const TTL_MS = 3000;

await describeWithPostgres('store leases across processes (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  const running: RuntimeProcess[] = [];
  const nts = testStreams(nats);
  const start = async (nodeId: string, hold: boolean, ttl = TTL_MS) => {
    const rt = await startRuntime({
      DATABASE_URL: db().url,
      ...nts.env(),
      INKWELL_DATA_DIR: dataDir,
      INKWELL_NODE_ID: nodeId,
      INKWELL_LEASE_TTL_MS: String(ttl),
      HARNESS_HOLD: hold ? '1' : '0',
      PORT: '0',
    });
    running.push(rt);
    return rt;
  };
  const create = async (rt: RuntimeProcess, blogId: string, instanceId: string, keywords: string[] = []) => {
    const res = await http(rt.base, 'POST', '/api/blogs', {
      blogId,
      instanceId,
      idea: { title: `Post ${blogId}` },
      keywords,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
  };
  const owner = async (instanceId: string) =>
    (
      (await client.query('select owner from store_leases where instance_id = $1', [instanceId])).rows[0] as
        { owner: string | null } | undefined
    )?.owner;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-takeover-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
  });
  afterAll(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await client?.end();
    await nts.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats)(
    'forwards a command to the store owner, and finishes a killed owner’s blogs within the TTL plus a few seconds',
    async () => {
      const a = await start('node-a', true);
      const b = await start('node-b', false);
      for (let i = 0; i < 6; i++) await create(a, `held-${i}`, `shop-${i % 2}`, ['hold:article']);
      expect(await owner('shop-0')).toBe('node-a');
      // Sent to B, applied by A (the owner): B forwards it.
      await create(b, 'via-b', 'shop-0', ['hold:article']);
      expect(await owner('shop-0')).toBe('node-a');
      await until('all held in GENERATING_CONTENT', async () => {
        const all = await statuses(client);
        return [...all.values()].filter((s) => s === 'GENERATING_CONTENT').length === 7 ? true : undefined;
      });
      const killedAt = Date.now();
      await killHard(a);
      await until(
        'B finishes A’s blogs',
        async () => ([...(await statuses(client)).values()].every((s) => s === 'DONE') ? true : undefined),
        TTL_MS + 10_000,
        100,
      );
      const tookMs = Date.now() - killedAt;
      console.log(`[takeover] blogs of a killed process finished ${tookMs} ms after the kill (TTL ${TTL_MS} ms)`);
      expect(tookMs).toBeLessThan(TTL_MS + 5000);
      expect(await owner('shop-0')).toBe('node-b');
      expect(await fleetProblems(client, dataDir, 7)).toEqual([]);
      const nc = await connect({ servers: nats!.url });
      try {
        expect(await settledEventProblems(nc, nts.streams.evt, client)).toEqual([]);
      } finally {
        await nc.close();
      }
    },
    120_000,
  );

  it.skipIf(!nats)(
    'hands a gracefully stopped process’s stores over at once, well before its leases would expire',
    async () => {
      const longTtl = 60_000;
      const c = await start('node-c', true, longTtl);
      const d = await start('node-d', false, longTtl);
      for (let i = 0; i < 4; i++) await create(c, `calm-${i}`, `calm-shop-${i % 2}`, ['hold:image']);
      await until('held in GENERATING_IMAGE', async () => {
        const { rows } = await client.query(
          "select count(*)::int as n from blogs where blog_id like 'calm-%' and status = 'GENERATING_IMAGE'",
        );
        return (rows[0] as { n: number }).n === 4 ? true : undefined;
      });
      c.proc.kill('SIGTERM');
      expect(await c.exited).toBe(0);
      const stoppedAt = Date.now();
      await until(
        'D finishes C’s blogs',
        async () => {
          const { rows } = await client.query(
            "select count(*)::int as n from blogs where blog_id like 'calm-%' and status = 'DONE'",
          );
          return (rows[0] as { n: number }).n === 4 ? true : undefined;
        },
        20_000,
        100,
      );
      const tookMs = Date.now() - stoppedAt;
      console.log(`[takeover] blogs of a stopped process finished ${tookMs} ms after it exited (TTL ${longTtl} ms)`);
      // Measured 0.1–0.3 s (README, Figures): a peer takes the stores when told, not at its next lease tick.
      expect(tookMs).toBeLessThan(1_500);
      const attempts = await publishAttempts(dataDir);
      for (let i = 0; i < 4; i++) expect(attempts.get(`calm-${i}`), `calm-${i}: publish attempts`).toBe(1);
      // Any live peer may take them (node-b from the test before is still up), never the stopped one.
      expect(['node-b', 'node-d']).toContain(await owner('calm-shop-0'));
      void d;
    },
    120_000,
  );
  it.skipIf(!nats)(
    'a command for a store whose owner was just killed waits for the lease and is applied (202, not an error)',
    async () => {
      const e = await start('node-e', true);
      const f = await start('node-f', false);
      // node-e holds the store: one blog held mid-stage keeps it busy, another waits for a selection.
      await create(e, 'busy-1', 'orphan-shop', ['hold:article']);
      const res = await http(e.base, 'POST', '/api/blogs', {
        blogId: 'pick-1',
        instanceId: 'orphan-shop',
        topic: 'figs',
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      await until('pick-1 awaits a selection, busy-1 is held', async () => {
        const all = await statuses(client);
        return all.get('pick-1') === 'AWAITING_SELECTION' && all.get('busy-1') === 'GENERATING_CONTENT'
          ? true
          : undefined;
      });
      expect(await owner('orphan-shop')).toBe('node-e');
      await killHard(e);
      // At once, while the dead process's lease is still valid: the command must wait it out, not fail.
      const sentAt = Date.now();
      const sel = await http(f.base, 'POST', '/api/blogs/pick-1/select', { instanceId: 'orphan-shop', ideaIndex: 0 });
      const tookMs = Date.now() - sentAt;
      console.log(`[takeover] a select for a killed owner's store answered ${sel.status} after ${tookMs} ms`);
      expect(sel.status, JSON.stringify(sel.body)).toBe(202);
      expect(tookMs).toBeLessThan(TTL_MS + 5000);
      await until(
        'both blogs DONE',
        async () => {
          const all = await statuses(client);
          return all.get('pick-1') === 'DONE' && all.get('busy-1') === 'DONE' ? true : undefined;
        },
        20_000,
        100,
      );
      const attempts = await publishAttempts(dataDir);
      for (const blogId of ['pick-1', 'busy-1']) expect(attempts.get(blogId), `${blogId}: publish attempts`).toBe(1);
    },
    120_000,
  );
});
