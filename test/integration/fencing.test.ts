/**
 * Fencing (needs PostgreSQL and NATS): a store owner that is alive but silent loses its lease, and from then on it
 * never writes that store's blogs again nor publishes them, while it keeps serving everything else.
 *
 * Process A is paused with SIGSTOP while a blog's image call is in flight (it takes HARNESS_SLOW_MS=2.5 s there), for
 * longer than its lease TTL; process B takes the store over and runs the image stage again (slowly: 8 s). A is
 * resumed while B's call is still running, so the row still has the version A read: only the lease fence (owner and
 * epoch, src/db/fence.ts) can stop A's late result from being committed and published. So that A cannot notice the
 * lost lease first and drop the blog before its write (the test would then pass without a fence), the test holds
 * `LOCK TABLE store_leases IN EXCLUSIVE MODE` while A resumes: lease updates (A's renew) wait, and so do fenced
 * writes (their FOR KEY SHARE row lock); once the lock goes, A's write re-checks the lease row and is refused. B's
 * renewals wait too, so B runs with a TTL that outlives the lock.
 *
 * Removing the fence (`createBlogRepo(db)` without a fence in src/app/runtime.ts) makes A commit the image
 * and go on to PUBLISHING and DONE; removing the publish stage's wait for its commit makes A publish the post.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publishAttempts, settledEventProblems } from '../support/fleet.check';
import { http, startRuntime, testStreams, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const TTL_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await describeWithPostgres('lease fencing (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  const running: RuntimeProcess[] = [];
  const nts = testStreams(nats);
  const start = async (nodeId: string, slowMs: number, ttlMs: number) => {
    const rt = await startRuntime({
      DATABASE_URL: db().url,
      ...nts.env(),
      INKWELL_DATA_DIR: dataDir,
      INKWELL_NODE_ID: nodeId,
      INKWELL_LEASE_TTL_MS: String(ttlMs),
      HARNESS_SLOW_MS: String(slowMs),
      PORT: '0',
    });
    running.push(rt);
    return rt;
  };
  const row = async (blogId: string) =>
    (await client.query('select status, version, seq from blogs where blog_id = $1', [blogId])).rows[0] as
      { status: string; version: number; seq: number } | undefined;
  const owner = async (instanceId: string) =>
    (
      (await client.query('select owner from store_leases where instance_id = $1', [instanceId])).rows[0] as
        { owner: string | null } | undefined
    )?.owner;
  const attemptsBy = async (instanceId: string, blogId: string) =>
    (await readFile(path.join(dataDir, 'published', instanceId, 'publish.attempts.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { blogId: string; pid: number })
      .filter((a) => a.blogId === blogId)
      .map((a) => a.pid);

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-fencing-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
  });
  afterAll(async () => {
    for (const rt of running) {
      rt.proc.kill('SIGCONT');
      rt.proc.kill('SIGKILL');
    }
    await client?.end();
    await nts.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats)(
    'an owner paused past its lease never writes or publishes that store’s blogs again, and keeps serving',
    async () => {
      // B's lease outlives the test's lock on store_leases (which holds B's renewals too), so B keeps the store.
      const [a, b] = await Promise.all([start('fence-a', 2500, TTL_MS), start('fence-b', 8000, 5 * TTL_MS)]);
      const res = await http(a.base, 'POST', '/api/blogs', {
        blogId: 'fenced-1',
        instanceId: 'fence-shop',
        idea: { title: 'Fenced post' },
        keywords: ['slow:image'],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      await until(
        'fenced-1 in GENERATING_IMAGE',
        async () => ((await row('fenced-1'))?.status === 'GENERATING_IMAGE' ? true : undefined),
        10_000,
        20,
      );
      a.proc.kill('SIGSTOP'); // A's image call is in flight
      const atPause = (await row('fenced-1'))!;
      expect(await owner('fence-shop')).toBe('fence-a');

      await until(
        'B takes the store over',
        async () => ((await owner('fence-shop')) === 'fence-b' ? true : undefined),
        5 * TTL_MS,
        50,
      );
      await sleep(1000); // B restores the blog and starts its own (slow) image call
      const lock = new pg.Client({ connectionString: db().url });
      await lock.connect();
      try {
        await lock.query('begin');
        await lock.query('lock table store_leases in exclusive mode');
        a.proc.kill('SIGCONT'); // A's image call is long overdue: it completes at once
        await sleep(2500);
        const afterResume = (await row('fenced-1'))!;
        expect(afterResume, 'A wrote the blog after losing its lease').toEqual(atPause);
        expect(await attemptsBy('fence-shop', 'fenced-1'), 'A published after losing its lease').toEqual([]);
      } finally {
        await lock.query('rollback').catch(() => undefined);
        await lock.end();
      }

      // A keeps serving: health, and a new blog of another store runs to DONE in A.
      expect((await http(a.base, 'GET', '/healthz')).status).toBe(200);
      const other = await http(a.base, 'POST', '/api/blogs', {
        blogId: 'a-after',
        instanceId: 'a-shop',
        idea: { title: 'Still here' },
      });
      expect(other.status, JSON.stringify(other.body)).toBe(202);
      await until('a-after DONE', async () => ((await row('a-after'))?.status === 'DONE' ? true : undefined), 15_000);
      expect(await owner('a-shop')).toBe('fence-a');

      // B finishes the fenced blog: published once, by B.
      await until('fenced-1 DONE', async () => ((await row('fenced-1'))?.status === 'DONE' ? true : undefined), 20_000);
      expect(await attemptsBy('fence-shop', 'fenced-1')).toEqual([b.proc.pid]);
      expect((await publishAttempts(dataDir)).get('a-after')).toBe(1);
      const nc = await connect({ servers: nats!.url });
      try {
        expect(await settledEventProblems(nc, nts.streams.evt, client)).toEqual([]);
      } finally {
        await nc.close();
      }
    },
    120_000,
  );
});
