/**
 * The process lifecycle of `npm start` (src/main.ts), as the contract's "Starting it" promises: it migrates,
 * serves `/healthz`, logs JSON lines; drains and exits 0 on SIGTERM, and a fresh process finishes what was in
 * flight, publishing each blog once; bad configuration exits non-zero with one line naming the variable;
 * a snapshot that cannot be restored is quarantined without stopping the process; secrets never reach the output.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { http, runToExit, startRuntime, until, type RuntimeProcess } from '../support/process';
import { startFakeOpenAi } from '../support/fake.openai';
import { describeWithPostgres, type PostgresHandle } from '../support/servers';

const MAIN = 'src/main.ts';
const HARNESS = 'test/support/runtime.harness.ts';
const idea = { title: 'Caring for cast iron', summary: 'Seasoning, cleaning and the myths in between.' };

/** Runs `src/main.ts` to its exit with exactly `env` added (inherited DATABASE_URL etc. removed). */
function runMain(env: Record<string, string>, timeoutMs = 20_000) {
  return runToExit(MAIN, [], { env, unset: ['DATABASE_URL', 'NATS_URL', 'REDIS_URL', 'PORT'], timeoutMs });
}

/** Sends SIGTERM and resolves with the exit code and how long the drain took. */
async function terminate(rt: RuntimeProcess): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  rt.proc.kill('SIGTERM');
  const code = await Promise.race([rt.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  if (code === 'timeout') {
    rt.proc.kill('SIGKILL');
    throw new Error(`no exit 20 s after SIGTERM:\n${rt.output.slice(-30).join('\n')}`);
  }
  return { code, ms: Date.now() - started };
}

/** The per-describe fixtures: a temp data dir, a pg client on the fresh database, and cleanup of processes. */
function useFixtures(db: () => PostgresHandle) {
  const f = {
    dataDir: '',
    client: undefined as unknown as pg.Client,
    running: [] as RuntimeProcess[],
    /** The environment of a runtime on this test's database and data dir, plus `extra`. */
    env: (extra: Record<string, string> = {}): Record<string, string> => ({
      DATABASE_URL: db().url,
      INKWELL_DATA_DIR: f.dataDir,
      PORT: '0',
      ...extra,
    }),
  };
  beforeAll(async () => {
    f.dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-lifecycle-'));
    f.client = new pg.Client({ connectionString: db().url });
    await f.client.connect();
  });
  afterEach(() => {
    for (const rt of f.running.splice(0)) if (rt.proc.exitCode === null) rt.proc.kill('SIGKILL');
  });
  afterAll(async () => {
    await f.client?.end();
    if (f.dataDir) await rm(f.dataDir, { recursive: true, force: true });
  });
  return f;
}

async function statusesOf(client: pg.Client, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await client.query<{ blog_id: string; status: string }>(
    'select blog_id, status from blogs where blog_id = any($1)',
    [ids],
  );
  return new Map(rows.map((r) => [r.blog_id, r.status]));
}

await describeWithPostgres('npm start (needs PostgreSQL)', (db) => {
  const f = useFixtures(db);
  const env = f.env;

  it('migrates, serves /healthz with {status:"ok"} and logs JSON lines on stdout', async () => {
    const rt = await startRuntime(env({ INKWELL_NODE_ID: 'boot' }), MAIN);
    f.running.push(rt);
    const health = await http(rt.base, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const { rows } = await f.client.query<{ n: number }>(
      "select count(*)::int as n from information_schema.tables where table_name in ('blogs', 'outbox')",
    );
    expect(rows[0]!.n).toBe(2);
    // Every stdout line before `listening` is one JSON object (stderr chunks hold no newlines here).
    const lines = rt.output.filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'listening')).toBe(true);
    const { code, ms } = await terminate(rt);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(15_000);
  });

  it('exits 0 within 15 s on SIGTERM with blogs in flight; a fresh process finishes each to DONE, published once', async () => {
    const first = await startRuntime(env({ HARNESS_HOLD: '1', INKWELL_NODE_ID: 'drained' }), HARNESS);
    f.running.push(first);
    const held = Array.from({ length: 4 }, (_, i) => `held-${i}`);
    const free = Array.from({ length: 4 }, (_, i) => `free-${i}`);
    for (const [i, blogId] of [...held, ...free].entries()) {
      const res = await http(first.base, 'POST', '/api/blogs', {
        blogId,
        instanceId: `store-${i % 2}`,
        idea,
        keywords: blogId.startsWith('held') ? ['hold:article'] : ['plain'],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    }
    const all = [...held, ...free];
    await until('held blogs mid-stage, free blogs done', async () => {
      const s = await statusesOf(f.client, all);
      const ok = held.every((id) => s.get(id) === 'GENERATING_CONTENT') && free.every((id) => s.get(id) === 'DONE');
      return ok ? true : undefined;
    });

    const { code, ms } = await terminate(first);
    expect(code, first.output.slice(-20).join('\n')).toBe(0);
    expect(ms).toBeLessThan(15_000);
    // The drain leaves in-flight work to be repeated, never finished as something else.
    const afterDrain = await statusesOf(f.client, held);
    for (const id of held) expect(afterDrain.get(id)).toBe('GENERATING_CONTENT');

    const second = await startRuntime(env({ HARNESS_HOLD: '0', INKWELL_NODE_ID: 'fresh' }), MAIN);
    f.running.push(second);
    await until(
      'every blog DONE',
      async () => {
        const s = await statusesOf(f.client, all);
        return all.every((id) => s.get(id) === 'DONE') ? true : undefined;
      },
      30_000,
      200,
    );
    const published: string[] = [];
    for (const store of ['store-0', 'store-1']) {
      const log = await readFile(path.join(f.dataDir, 'published', store, 'publish.log'), 'utf8');
      for (const line of log.trim().split('\n')) published.push((JSON.parse(line) as { blogId: string }).blogId);
    }
    expect(published.sort()).toEqual([...all].sort());
    expect((await terminate(second)).code).toBe(0);
  }, 120_000);
});

describe('bad configuration', () => {
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['INKWELL_MAX_ATTEMPTS', '0'],
    ['DATABASE_URL', 'mysql://x'],
    ['INKWELL_LEASE_TTL_MS', 'soon'],
  ];
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-badconfig-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it.each(cases)(
    'exits non-zero quickly with one stderr line naming %s=%s, without a stack trace',
    async (name, value) => {
      const started = Date.now();
      const { code, stderr } = await runMain({ INKWELL_DATA_DIR: dataDir, [name]: value });
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const lines = stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toContain(name);
      expect(stderr).not.toMatch(/\n\s+at /);
    },
  );
});

await describeWithPostgres('a snapshot that cannot be restored (needs PostgreSQL)', (db) => {
  const f = useFixtures(db);
  const env = f.env;

  it('is quarantined at start while the process keeps serving and a healthy blog beside it finishes', async () => {
    // A first process migrates and parks a healthy blog mid-stage, then drains.
    const first = await startRuntime(env({ HARNESS_HOLD: '1', INKWELL_NODE_ID: 'parker' }), HARNESS);
    f.running.push(first);
    const res = await http(first.base, 'POST', '/api/blogs', {
      blogId: 'healthy-1',
      instanceId: 'shop',
      idea,
      keywords: ['hold:article'],
    });
    expect(res.status).toBe(202);
    await until('healthy blog parked', async () =>
      (await statusesOf(f.client, ['healthy-1'])).get('healthy-1') === 'GENERATING_CONTENT' ? true : undefined,
    );
    expect((await terminate(first)).code).toBe(0);

    // Garbage written straight into the table, beside it.
    const { rows } = await f.client.query<{ snapshot: Record<string, unknown> }>(
      "select snapshot from blogs where blog_id = 'healthy-1'",
    );
    const valid = rows[0]!.snapshot;
    const insert = (blogId: string, snapshot: unknown, version: number) =>
      f.client.query(
        `insert into blogs (blog_id, instance_id, status, seq, snapshot, machine_version)
         values ($1, 'shop', 'GENERATING_CONTENT', 3, $2::jsonb, $3)`,
        [blogId, JSON.stringify(snapshot), version],
      );
    await insert('bad-state', { ...valid, value: 'NO_SUCH_STATE' }, 1);
    await insert('bad-version', valid, 999);
    await insert('bad-shape', 'not a snapshot', 1);

    const second = await startRuntime(env({ INKWELL_NODE_ID: 'restorer' }), MAIN);
    f.running.push(second);
    expect((await http(second.base, 'GET', '/healthz')).status).toBe(200);
    const bad = ['bad-state', 'bad-version', 'bad-shape'];
    const quarantined = await until('garbage quarantined', async () => {
      const q = await f.client.query<{
        blog_id: string;
        quarantined_at: Date | null;
        quarantine_reason: string | null;
      }>('select blog_id, quarantined_at, quarantine_reason from blogs where blog_id = any($1)', [bad]);
      return q.rows.every((r) => r.quarantined_at !== null) && q.rows.length === bad.length ? q.rows : undefined;
    });
    for (const row of quarantined) expect(row.quarantine_reason, row.blog_id).toMatch(/\S/);
    expect(quarantined.find((r) => r.blog_id === 'bad-version')!.quarantine_reason).toContain('999');

    await until(
      'healthy blog DONE',
      async () => ((await statusesOf(f.client, ['healthy-1'])).get('healthy-1') === 'DONE' ? true : undefined),
      30_000,
    );
    // Still running and serving, and new work still goes through.
    expect(second.proc.exitCode).toBeNull();
    expect((await http(second.base, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    const after = await http(second.base, 'POST', '/api/blogs', { blogId: 'healthy-2', instanceId: 'shop', idea });
    expect(after.status).toBe(202);
    await until('a new blog DONE', async () =>
      (await statusesOf(f.client, ['healthy-2'])).get('healthy-2') === 'DONE' ? true : undefined,
    );
    expect((await terminate(second)).code).toBe(0);
  }, 120_000);
});

await describeWithPostgres('secrets in the output (needs PostgreSQL)', (db) => {
  const f = useFixtures(db);
  const KEY = 'sk-test-secret-123';
  const TOKEN = 'tok-secret-456';

  it('never writes OPENAI_API_KEY or INKWELL_API_TOKEN to stdout or stderr', async () => {
    // The real OpenAI adapter runs, against the local fake that speaks the API (and checks the key).
    const openai = await startFakeOpenAi({ apiKey: KEY });
    const rt = await startRuntime(
      {
        DATABASE_URL: db().url,
        INKWELL_DATA_DIR: f.dataDir,
        PORT: '0',
        OPENAI_API_KEY: KEY,
        OPENAI_BASE_URL: openai.url,
        INKWELL_API_TOKEN: TOKEN,
        INKWELL_LOG_LEVEL: 'debug',
      },
      MAIN,
    );
    f.running.push(rt);
    const blogId = `secret-${randomUUID().slice(0, 8)}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await http(rt.base, 'POST', '/api/blogs', { blogId, instanceId: 'vault', idea })).status).toBe(401);
    const wrong = await http(
      rt.base,
      'POST',
      '/api/blogs',
      { blogId, instanceId: 'vault', idea },
      {
        authorization: `Bearer ${KEY}`,
      },
    );
    expect(wrong.status).toBe(401);
    const res = await http(rt.base, 'POST', '/api/blogs', { blogId, instanceId: 'vault', idea }, auth);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await until('blog DONE', async () => {
      const r = await http(rt.base, 'GET', `/api/blogs/${blogId}?instanceId=vault`, undefined, auth);
      return r.body?.status === 'DONE' ? true : undefined;
    });
    expect((await terminate(rt)).code).toBe(0);
    await openai.close();
    expect(openai.completions().length).toBeGreaterThanOrEqual(1);
    const all = rt.output.join('\n');
    expect(all).toContain('listening');
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(TOKEN);
  }, 90_000);
});
