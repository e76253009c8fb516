/**
 * A blog persisted by machine version 1 in `GENERATING_CONTENT.admitting` (selected or retried, waiting for a slot)
 * restores sensibly in a runtime process (needs PostgreSQL): migrated to PENDING, it waits for a slot of its store
 * like any PENDING blog (it holds none, whatever its row's status says), and once admitted it resumes the content
 * stage and finishes, with no status change the contract does not allow.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http, killHard, type RuntimeProcess, startRuntime, until } from '../support/process';
import { describeWithPostgres } from '../support/servers';

const idea = { title: 'Caring for cast iron', summary: 'Seasoning, cleaning and the myths in between.' };

/** `legacy-1` as machine version 1 persisted it, retried after its content failed, waiting in `admitting`. */
const v1Snapshot = {
  status: 'active',
  value: { GENERATING_CONTENT: 'admitting' },
  historyValue: {},
  context: {
    blogId: 'legacy-1',
    instanceId: 'shop',
    request: { idea, keywords: [] },
    settings: { maxAttempts: 5, retryBaseMs: 1000, selectionTimeoutMs: 604_800_000 },
    attempts: 0,
    idea,
    usage: { inputTokens: 0, outputTokens: 0, images: 0 },
  },
  children: {
    admission: {
      snapshot: { status: 'active', input: { blogId: 'legacy-1', instanceId: 'shop' } },
      src: 'admission',
      syncSnapshot: false,
    },
  },
};

await describeWithPostgres('restoring a version 1 snapshot (needs PostgreSQL)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  const running: RuntimeProcess[] = [];
  const start = async (nodeId: string) => {
    const rt = await startRuntime(
      {
        DATABASE_URL: db().url,
        INKWELL_DATA_DIR: dataDir,
        INKWELL_NODE_ID: nodeId,
        INKWELL_MAX_ACTIVE_PER_STORE: '1',
        HARNESS_HOLD: '1',
        PORT: '0',
      },
      undefined,
      undefined,
      ['NATS_URL', 'REDIS_URL'],
    );
    running.push(rt);
    return rt;
  };
  const blog = async (rt: RuntimeProcess, blogId: string) =>
    (await http(rt.base, 'GET', `/api/blogs/${blogId}`)).body as { status: string; seq: number };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-legacy-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
  });
  afterAll(async () => {
    await Promise.all(running.map(killHard));
    await client?.end();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('waits for a slot in PENDING, then resumes its content stage and finishes', async () => {
    // A first process migrates the database and parks `holder-1` in its content stage: the store's only slot.
    const first = await start('parker');
    const created = await http(first.base, 'POST', '/api/blogs', {
      blogId: 'holder-1',
      instanceId: 'shop',
      idea,
      keywords: ['hold:article'],
    });
    expect(created.status).toBe(202);
    await until('holder-1 working', async () =>
      (await blog(first, 'holder-1')).status === 'GENERATING_CONTENT' ? true : undefined,
    );
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    await client.query(
      `insert into blogs (blog_id, instance_id, status, seq, snapshot, machine_version)
       values ('legacy-1', 'shop', 'GENERATING_CONTENT', 3, $1::jsonb, 1)`,
      [JSON.stringify(v1Snapshot)],
    );
    const second = await start('restorer');
    // holder-1 (restored first, by creation) holds the slot again: legacy-1 waits, calling nothing.
    await until('holder-1 restored', async () =>
      (await blog(second, 'holder-1')).status === 'GENERATING_CONTENT' ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(await blog(second, 'legacy-1')).toMatchObject({ status: 'GENERATING_CONTENT', seq: 3 });
    const row = await client.query<{ machine_version: number; snapshot: { value: unknown } }>(
      "select machine_version, snapshot from blogs where blog_id = 'legacy-1'",
    );
    expect(row.rows[0]?.snapshot.value, 'nothing ran: the row is as inserted').toEqual({
      GENERATING_CONTENT: 'admitting',
    });

    // The slot comes free: legacy-1 is admitted, resumes its content and finishes.
    expect((await http(second.base, 'POST', '/api/blogs/holder-1/cancel', { instanceId: 'shop' })).status).toBe(202);
    await until('legacy-1 done', async () => ((await blog(second, 'legacy-1')).status === 'DONE' ? true : undefined));
    expect(await blog(second, 'legacy-1')).toMatchObject({ status: 'DONE', seq: 6 });
    const events = await client.query<{ seq: number; status: string; previous: string }>(
      `select seq, payload->>'status' as status, payload->>'previousStatus' as previous from outbox
       where blog_id = 'legacy-1' order by seq`,
    );
    expect(events.rows.map((e) => [e.seq, e.previous, e.status])).toEqual([
      [4, 'GENERATING_CONTENT', 'GENERATING_IMAGE'],
      [5, 'GENERATING_IMAGE', 'PUBLISHING'],
      [6, 'PUBLISHING', 'DONE'],
    ]);
    const after = await client.query<{ machine_version: number }>(
      "select machine_version from blogs where blog_id = 'legacy-1'",
    );
    expect(after.rows[0]?.machine_version).toBe(2);
  }, 90_000);
});
