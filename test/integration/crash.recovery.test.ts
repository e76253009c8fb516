/**
 * Crash recovery (needs PostgreSQL): a runtime process is killed with SIGKILL while blogs sit in every stage;
 * a new process rehydrates them and finishes each one, publishing each exactly once, and the durable timers
 * (a retry backoff and a selection timeout) fire on time although they were armed by the dead process.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { blogSeqs, eventProblems, publishAttempts, type StatusEvent } from '../support/fleet.check';
import { describeWithPostgres } from '../support/servers';
import { http, killHard, startRuntime, until, type RuntimeProcess } from '../support/process';

const SELECTION_TIMEOUT_MS = 25_000;
const RETRY_BASE_MS = 30_000; // first backoff: 15–30 s, so it is still pending when the new process is up

interface Spec {
  blogId: string;
  instanceId: string;
  body: Record<string, unknown>;
  /** Status it must be parked in when the process dies. */
  parked: string;
}

const idea = { title: 'How we roast our coffee', summary: 'From green beans to your cup.' };
const SPECS: Spec[] = [
  {
    blogId: 'crowd-1',
    instanceId: 'crowded',
    body: { topic: 'tea', keywords: ['hold:ideas'] },
    parked: 'GENERATING_IDEAS',
  },
  { blogId: 'crowd-2', instanceId: 'crowded', body: { idea }, parked: 'PENDING' },
  {
    blogId: 'ideas-1',
    instanceId: 's-ideas',
    body: { topic: 'mugs', keywords: ['hold:ideas'] },
    parked: 'GENERATING_IDEAS',
  },
  { blogId: 'select-1', instanceId: 's-select', body: { topic: 'plants' }, parked: 'AWAITING_SELECTION' },
  { blogId: 'timeout-1', instanceId: 's-timeout', body: { topic: 'socks' }, parked: 'AWAITING_SELECTION' },
  {
    blogId: 'content-1',
    instanceId: 's-content',
    body: { idea, keywords: ['hold:article'] },
    parked: 'GENERATING_CONTENT',
  },
  {
    blogId: 'backoff-1',
    instanceId: 's-backoff',
    body: { idea, keywords: ['fail-once:article'] },
    parked: 'GENERATING_CONTENT',
  },
  { blogId: 'image-1', instanceId: 's-image', body: { idea, keywords: ['hold:image'] }, parked: 'GENERATING_IMAGE' },
  { blogId: 'publish-1', instanceId: 's-publish', body: { idea, keywords: ['hold:publish'] }, parked: 'PUBLISHING' },
  { blogId: 'done-1', instanceId: 's-done', body: { idea }, parked: 'DONE' },
];

await describeWithPostgres('crash recovery (needs PostgreSQL)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  const running: RuntimeProcess[] = [];
  const env = () => ({
    DATABASE_URL: db().url,
    INKWELL_DATA_DIR: dataDir,
    PORT: '0',
    INKWELL_MAX_ACTIVE_PER_STORE: '1',
    INKWELL_SELECTION_TIMEOUT_MS: String(SELECTION_TIMEOUT_MS),
    INKWELL_RETRY_BASE_MS: String(RETRY_BASE_MS),
    INKWELL_LEASE_TTL_MS: '2000', // the new process may take the dead one's stores 2 s after its last heartbeat
  });
  const row = async (blogId: string) =>
    (await client.query('select status, seq, version, snapshot from blogs where blog_id = $1', [blogId])).rows[0] as
      | { status: string; seq: number; version: number; snapshot: { value: unknown; context: Record<string, number> } }
      | undefined;
  const eventsOf = async (blogId: string) =>
    (await client.query('select seq, payload from outbox where blog_id = $1 order by seq', [blogId])).rows as Array<{
      seq: number;
      payload: StatusEvent & { at: string; error?: { code: string } };
    }>;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-crash-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
  });
  afterAll(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await client?.end();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('resumes blogs killed in every stage to DONE, publishes each once, and fires timers on time', async () => {
    const first = await startRuntime({ ...env(), HARNESS_HOLD: '1', INKWELL_NODE_ID: 'first' });
    running.push(first);
    for (const spec of SPECS) {
      const res = await http(first.base, 'POST', '/api/blogs', {
        blogId: spec.blogId,
        instanceId: spec.instanceId,
        ...spec.body,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    }
    // Park every blog in its stage; the backoff blog must be waiting out its retry.
    await until('every blog parked in its stage', async () => {
      for (const spec of SPECS) {
        const r = await row(spec.blogId);
        if (r?.status !== spec.parked) return undefined;
      }
      const backoff = await row('backoff-1');
      const log = await readFile(path.join(dataDir, 'published/s-publish/publish.log'), 'utf8').catch(() => '');
      return JSON.stringify(backoff?.snapshot.value).includes('backoff') && log.includes('publish-1')
        ? true
        : undefined;
    });
    const retryAt = (await row('backoff-1'))!.snapshot.context.retryAt!;
    const deadline = (await row('timeout-1'))!.snapshot.context.selectionDeadline!;
    const parkedVersion = (await row('timeout-1'))!.version;

    await killHard(first);
    const second = await startRuntime({ ...env(), HARNESS_HOLD: '0', INKWELL_NODE_ID: 'second' });
    running.push(second);
    const readyAt = Date.now();
    expect(retryAt, 'the backoff must still be pending when the new process is up').toBeGreaterThan(readyAt);
    expect(deadline, 'the selection timeout must still be pending when the new process is up').toBeGreaterThan(readyAt);
    // Restored, not re-written: a blog that did not move keeps its row version.
    expect((await row('timeout-1'))!.version).toBe(parkedVersion);

    const sel = await http(second.base, 'POST', '/api/blogs/select-1/select', { instanceId: 's-select', ideaIndex: 0 });
    expect(sel.status, JSON.stringify(sel.body)).toBe(202);
    // The store owner picks an idea for the blogs whose ideas arrive after the restart (all but timeout-1).
    const selectArrivals = async (now: string[]) => {
      for (const [i, spec] of SPECS.entries()) {
        if (spec.blogId === 'timeout-1' || !now[i]!.endsWith('=AWAITING_SELECTION')) continue;
        const res = await http(second.base, 'POST', `/api/blogs/${spec.blogId}/select`, {
          instanceId: spec.instanceId,
          ideaIndex: 1,
        });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
      }
    };

    let statuses = '';
    await until(
      'every blog finished',
      async () => {
        const now = await Promise.all(SPECS.map(async (s) => `${s.blogId}=${(await row(s.blogId))?.status}`));
        statuses = now.join(' ');
        await selectArrivals(now);
        const done = SPECS.every((s, i) => now[i]!.endsWith(s.blogId === 'timeout-1' ? '=FAILED' : '=DONE'));
        return done ? true : undefined;
      },
      60_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; statuses: ${statuses}\n${second.output.slice(-30).join('\n')}`);
    });

    // Each blog published exactly once, across the crash: one attempt reached the publisher, and one page won.
    const attempts = await publishAttempts(dataDir);
    for (const spec of SPECS)
      expect(attempts.get(spec.blogId), `${spec.blogId}: publish attempts`).toBe(
        spec.blogId === 'timeout-1' ? undefined : 1,
      );
    for (const spec of SPECS.filter((s) => s.blogId !== 'timeout-1')) {
      const log = await readFile(path.join(dataDir, 'published', spec.instanceId, 'publish.log'), 'utf8');
      const lines = log
        .trim()
        .split('\n')
        .filter((l) => l.includes(`"blogId":"${spec.blogId}"`));
      expect(lines, `${spec.blogId} published once`).toHaveLength(1);
    }
    // Events: seq 1..n without gaps, ending where the row is, each change legal and starting where the last ended.
    const committed = SPECS.map(async (spec) =>
      (await eventsOf(spec.blogId)).map((e) => ({ ...e.payload, seq: e.seq })),
    );
    expect(eventProblems((await Promise.all(committed)).flat(), await blogSeqs(client))).toEqual([]);
    // The timers armed by the dead process fired on time in the new one.
    const timedOut = (await eventsOf('timeout-1')).at(-1)!.payload;
    expect(timedOut.error?.code).toBe('SELECTION_TIMEOUT');
    const timedOutAt = Date.parse(timedOut.at);
    expect(timedOutAt).toBeGreaterThanOrEqual(deadline);
    expect(timedOutAt).toBeLessThan(deadline + 250); // measured 3 ms late
    const afterBackoff = (await eventsOf('backoff-1')).find((e) => e.payload.status === 'GENERATING_IMAGE')!.payload;
    const resumedAt = Date.parse(afterBackoff.at);
    console.log(
      `[crash] selection timeout fired ${timedOutAt - deadline} ms late, backoff ${resumedAt - retryAt} ms late`,
    );
    expect(resumedAt).toBeGreaterThanOrEqual(retryAt);
    expect(resumedAt).toBeLessThan(retryAt + 250); // measured 12 ms late
  }, 120_000);
});
