/**
 * Bulk retry and cancel over HTTP on the embedded default, with thousands of blogs: every matching blog is moved
 * once (one event leaving FAILED each, seen on the bus), no other blog is touched, a live select
 * sent meanwhile is answered, the filters are checked, and the outcomes show in the metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { StageFailureError } from '../../src/errors';
import type { Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';
import { injectJson } from '../support/inject';

const TOKEN = 'bulk-token';
const MATCHING = 2000; // store bulk-a, code REFUSED_A
const OTHER_CODE = 300; // store bulk-a, code REFUSED_B
const OTHER_STORE = 300; // store bulk-b, code REFUSED_A
let dataDir: string;
let runtime: Runtime;
/** Blogs whose article has failed once: a retried one fails again, with code `AGAIN` (fast, and distinguishable). */
const failedOnce = new Set<string>();
/** Every status event on the bus, per blog: `previous>status`. */
const events = new Map<string, string[]>();

/** Offline providers whose article fails for good: first with the code of the `code:` keyword, then `AGAIN`. */
function failingProviders(base: Providers): Providers {
  return {
    ...base,
    writer: {
      ...base.writer,
      generateIdeas: (c) => base.writer.generateIdeas(c),
      generateArticle: (c) => {
        const code = c.request.keywords.find((k) => k.startsWith('code:'))?.slice(5);
        if (!code) return base.writer.generateArticle(c);
        const again = failedOnce.has(c.blogId);
        failedOnce.add(c.blogId);
        return Promise.reject(new StageFailureError(again ? 'AGAIN' : code, 'the writer refused', false));
      },
    },
  };
}

const call = (method: 'GET' | 'POST', url: string, body?: unknown, token: string | null = TOKEN) =>
  injectJson(runtime.http, token, method, url, body);

async function counts(instanceId: string): Promise<Record<string, number>> {
  const rows = await runtime.repo.countByStatus();
  return Object.fromEntries(rows.filter((r) => r.instanceId === instanceId).map((r) => [r.status, r.n]));
}

async function until(check: () => Promise<boolean>, what: string, ms = 240_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createMany(instanceId: string, prefix: string, n: number, code: string) {
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        runtime.intake.apply('create', {
          blogId: `${prefix}-${i + j}`,
          instanceId,
          idea: { title: `t${i + j}` },
          keywords: [`code:${code}`],
        }),
      ),
    );
  }
}

/** Per blog whose id starts with `prefix-`: how many of its events are the move `move` (`*` for any status). */
const moves = (prefix: string, move: string) =>
  [...events]
    .filter(([id]) => id.startsWith(`${prefix}-`))
    .map(
      ([, list]) => list.filter((m) => m === move || (move.endsWith('>*') && m.startsWith(move.slice(0, -1)))).length,
    );

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-bulk-'));
  const config = loadConfig({
    INKWELL_DATA_DIR: dataDir,
    INKWELL_API_TOKEN: TOKEN,
    INKWELL_LOG_LEVEL: 'silent',
    INKWELL_MAX_ACTIVE_PER_STORE: '200',
  });
  ({ runtime } = await composeRuntime({
    config,
    database: await openPglite(undefined),
    providers: (configured) => failingProviders(configured()),
  }));
  runtime.bus.subscribe(runtime.subjects.allEvents, (msg) => {
    const e = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, string>;
    const list = events.get(e.blogId!) ?? [];
    list.push(`${e.previousStatus ?? 'NEW'}>${e.status}`);
    events.set(e.blogId!, list);
  });
  await runtime.start(false);
  await createMany('bulk-a', 'a', MATCHING, 'REFUSED_A');
  await createMany('bulk-a', 'ab', OTHER_CODE, 'REFUSED_B');
  await createMany('bulk-b', 'b', OTHER_STORE, 'REFUSED_A');
  await until(
    async () =>
      (await counts('bulk-a')).FAILED === MATCHING + OTHER_CODE && (await counts('bulk-b')).FAILED === OTHER_STORE,
    'every blog to fail',
  );
}, 300_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('bulk retry and cancel', { timeout: 300_000 }, () => {
  it('refuses a bulk call without a filter, with a bad time or an unknown field (400), and without the token (401)', async () => {
    for (const body of [{}, { dryRun: true }, { createdAfter: 'yesterday' }, { status: 'LOST' }, { blogId: 'x' }]) {
      const res = await call('POST', '/api/blogs/bulk/retry', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    }
    expect((await call('POST', '/api/blogs/bulk/cancel', { instanceId: 'bulk-a' }, null)).status).toBe(401);
  });

  it('counts with dryRun and moves nothing', async () => {
    const res = await call('POST', '/api/blogs/bulk/retry', { instanceId: 'bulk-a', code: 'REFUSED_A', dryRun: true });
    expect(res).toEqual({ status: 202, body: { matched: MATCHING, applied: 0 } });
    const stage = await call('POST', '/api/blogs/bulk/retry', { stage: 'GENERATING_CONTENT', dryRun: true });
    expect(stage.body.matched).toBe(MATCHING + OTHER_CODE + OTHER_STORE);
    const none = await call('POST', '/api/blogs/bulk/retry', { createdBefore: '2000-01-01T00:00:00Z', dryRun: true });
    expect(none.body.matched).toBe(0);
    expect((await counts('bulk-a')).FAILED).toBe(MATCHING + OTHER_CODE);
  });

  it('retries every matching blog exactly once, touches no other, and a live select is answered meanwhile', async () => {
    await runtime.intake.apply('create', { blogId: 'live-1', instanceId: 'live', topic: 'live selection' });
    await until(async () => (await call('GET', '/api/blogs/live-1')).body.status === 'AWAITING_SELECTION', 'ideas');
    const started = Date.now();
    const bulk = call('POST', '/api/blogs/bulk/retry', { instanceId: 'bulk-a', code: 'REFUSED_A' });
    await new Promise((r) => setTimeout(r, 200)); // the bulk is under way
    const selectStarted = Date.now();
    const select = await call('POST', '/api/blogs/live-1/select', { instanceId: 'live', ideaIndex: 0 });
    const selectMs = Date.now() - selectStarted;
    const res = await bulk;
    const bulkMs = Date.now() - started;
    expect(select.status).toBe(202);
    expect(res).toEqual({ status: 202, body: { matched: MATCHING, applied: MATCHING } });
    console.log(`bulk retry of ${MATCHING} blogs: ${bulkMs} ms; a live select meanwhile: ${selectMs} ms`);
    await until(
      async () => moves('a', 'GENERATING_CONTENT>FAILED').every((n) => n === 2),
      'the retried blogs to fail again',
    );
    expect(moves('a', 'FAILED>*')).toEqual(Array(MATCHING).fill(1));
    expect(moves('ab', 'FAILED>*')).toEqual(Array(OTHER_CODE).fill(0));
    expect(moves('b', 'FAILED>*')).toEqual(Array(OTHER_STORE).fill(0));
    expect(await counts('bulk-a')).toEqual({ FAILED: MATCHING + OTHER_CODE });
    const codeA = await call('POST', '/api/blogs/bulk/retry', { code: 'REFUSED_A', dryRun: true });
    expect(codeA.body.matched).toBe(OTHER_STORE); // the retried ones now failed with AGAIN
    const metrics = await runtime.http.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain(`inkwell_bulk_commands_total{command="retry",outcome="applied"} ${MATCHING}`);
  });

  it('a repeated bulk retry matches nothing more', async () => {
    const res = await call('POST', '/api/blogs/bulk/retry', { instanceId: 'bulk-a', code: 'REFUSED_A' });
    expect(res.body).toEqual({ matched: 0, applied: 0 });
  });

  it('cancels the matching unfinished blogs once, and leaves finished ones alone', async () => {
    const res = await call('POST', '/api/blogs/bulk/cancel', { instanceId: 'bulk-b' });
    expect(res).toEqual({ status: 202, body: { matched: OTHER_STORE, applied: OTHER_STORE } });
    await until(async () => (await counts('bulk-b')).CANCELLED === OTHER_STORE, 'cancellations');
    // Committed is not yet published: the events reach the bus through the outbox relay a moment later.
    await until(async () => moves('b', 'FAILED>CANCELLED').every((n) => n >= 1), 'the cancellations to be published');
    await new Promise((r) => setTimeout(r, 200)); // a duplicate, if any, would come meanwhile
    expect(moves('b', 'FAILED>CANCELLED')).toEqual(Array(OTHER_STORE).fill(1));
    expect(moves('a', 'FAILED>CANCELLED')).toEqual(Array(MATCHING).fill(0));
    const again = await call('POST', '/api/blogs/bulk/cancel', { instanceId: 'bulk-b' });
    expect(again.body).toEqual({ matched: 0, applied: 0 });
    expect((await counts('bulk-a')).FAILED).toBe(MATCHING + OTHER_CODE);
  });
});
