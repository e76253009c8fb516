/**
 * The HTTP API of the contract, route by route, on the embedded default (PGlite in memory, offline providers):
 * status codes, error bodies, store isolation, cursor paging, the API token and body limits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActor } from 'xstate';
import { BLOG_MACHINE_VERSION, blogMachine } from '../../machines/blog.machine';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { StageFailureError } from '../../src/errors';
import type { Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';
import { injectJson } from '../support/inject';

const TOKEN = 'test-token-123';
let dataDir: string;
let runtime: Runtime;

/** Offline providers, except that an article for a `fail:article` blog fails for good. */
function failingProviders(base: Providers): Providers {
  return {
    ...base,
    writer: {
      ...base.writer,
      generateIdeas: (c) => base.writer.generateIdeas(c),
      generateArticle: (c) =>
        c.request.keywords.includes('fail:article')
          ? Promise.reject(new StageFailureError('CONTENT_REFUSED', 'the writer refused', false))
          : base.writer.generateArticle(c),
    },
  };
}

const call = (method: 'GET' | 'POST', url: string, body?: unknown, token: string | null = TOKEN) =>
  injectJson(runtime.http, token, method, url, body);

async function waitForStatus(blogId: string, status: string) {
  for (let i = 0; i < 200; i++) {
    const res = await call('GET', `/api/blogs/${blogId}`);
    if (res.body.status === status) return res.body;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${blogId} never reached ${status}`);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-http-'));
  const config = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_API_TOKEN: TOKEN, INKWELL_LOG_LEVEL: 'silent' });
  ({ runtime } = await composeRuntime({
    config,
    database: await openPglite(undefined),
    providers: (configured) => failingProviders(configured()),
  }));
  await runtime.start(false);
}, 60_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('HTTP API (embedded)', () => {
  it('serves /healthz without a token', async () => {
    expect(await call('GET', '/healthz', undefined, null)).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('asks for the bearer token on /api: 401 UNAUTHORIZED when missing or wrong', async () => {
    for (const token of [null, 'wrong-token']) {
      const res = await call('GET', '/api/blogs', undefined, token);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
    }
  });

  it('creates a blog: 202 with the blog, and a repeated create changes nothing', async () => {
    const res = await call('POST', '/api/blogs', { blogId: 'h-1', instanceId: 'shop-a', idea: { title: 'Tea 101' } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ blogId: 'h-1', instanceId: 'shop-a', seq: expect.any(Number) });
    const done = await waitForStatus('h-1', 'DONE');
    expect(done.post).toMatchObject({ id: 'h-1' });
    const again = await call('POST', '/api/blogs', { blogId: 'h-1', instanceId: 'shop-a', topic: 'something else' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ status: 'DONE', seq: done.seq, idea: { title: 'Tea 101' } });
  });

  it('starts a blog whose insert landed but whose answer was lost (an outage), when its create is repeated', async () => {
    // The store is held here already (so nothing rehydrates it); the row and its first event are in the database,
    // but no actor runs it: as after an insert whose answer was lost.
    expect((await call('POST', '/api/blogs', { instanceId: 'shop-lost', idea: { title: 'Held' } })).status).toBe(202);
    const input = {
      blogId: 'lost-answer',
      instanceId: 'shop-lost',
      request: { keywords: [], idea: { title: 'Lost answer', summary: '' } },
      settings: { maxAttempts: 3, retryBaseMs: 10, selectionTimeoutMs: 60_000 },
    };
    const at = new Date();
    await runtime.repo.insert({
      blogId: input.blogId,
      instanceId: input.instanceId,
      status: 'PENDING',
      snapshot: createActor(blogMachine, { input }).getPersistedSnapshot(),
      machineVersion: BLOG_MACHINE_VERSION,
      view: {},
      event: { seq: 1, payload: { blogId: input.blogId, status: 'PENDING', seq: 1 } },
      createdAt: at,
    });
    const again = await call('POST', '/api/blogs', {
      blogId: 'lost-answer',
      instanceId: 'shop-lost',
      idea: { title: 'Lost answer' },
    });
    expect(again.status).toBe(202);
    await waitForStatus('lost-answer?instanceId=shop-lost', 'DONE');
  });

  it('rejects bad create bodies with 400 INVALID_PAYLOAD', async () => {
    const bad: unknown[] = [
      'not json',
      [],
      { instanceId: 'shop-a' },
      { instanceId: 'shop a', topic: 'x' },
      { instanceId: 'shop-a', topic: 'x'.repeat(501) },
      { instanceId: 'shop-a', idea: { title: '' } },
      { instanceId: 'shop-a', topic: 'x', keywords: Array.from({ length: 21 }, (_, i) => `k${i}`) },
      { instanceId: 'shop-a', topic: 'x', surprise: true },
      { instanceId: 'shop-a', topic: 'x', padding: 'x'.repeat(70 * 1024) },
    ];
    for (const body of bad) {
      const res = await call('POST', '/api/blogs', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_PAYLOAD', message: expect.any(String) });
    }
  });

  it('selects an idea: 400 INVALID_SELECTION out of range, 202 in range, then 409 for a repeat', async () => {
    await call('POST', '/api/blogs', { blogId: 'h-sel', instanceId: 'shop-a', topic: 'loose-leaf tea' });
    const waiting = await waitForStatus('h-sel', 'AWAITING_SELECTION');
    expect(waiting.ideas.length).toBeGreaterThanOrEqual(3);
    const out = await call('POST', '/api/blogs/h-sel/select', {
      instanceId: 'shop-a',
      ideaIndex: waiting.ideas.length,
    });
    expect(out.status).toBe(400);
    expect(out.body.error.code).toBe('INVALID_SELECTION');
    const notInt = await call('POST', '/api/blogs/h-sel/select', { instanceId: 'shop-a', ideaIndex: 0.5 });
    expect(notInt.body.error.code).toBe('INVALID_PAYLOAD');
    const ok = await call('POST', '/api/blogs/h-sel/select', { instanceId: 'shop-a', ideaIndex: 1 });
    expect(ok.status).toBe(202);
    expect(ok.body.idea).toEqual(waiting.ideas[1]);
    const repeat = await call('POST', '/api/blogs/h-sel/select', { instanceId: 'shop-a', ideaIndex: 1 });
    expect(repeat.status).toBe(409);
    expect(repeat.body.error.code).toBe('INVALID_STATE');
  });

  it('restores the waiting blogs of selections that arrive together with one read of the database', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `h-together-${i}`);
    for (const blogId of ids) await call('POST', '/api/blogs', { blogId, instanceId: 'shop-t', topic: 'oolong' });
    for (const blogId of ids) await waitForStatus(blogId, 'AWAITING_SELECTION');
    await new Promise((r) => setTimeout(r, 50)); // a waiting blog leaves memory right after its commit
    const reads = vi.spyOn(runtime.repo, 'getMany');
    try {
      const answers = await Promise.all(
        ids.map((blogId) => call('POST', `/api/blogs/${blogId}/select`, { instanceId: 'shop-t', ideaIndex: 0 })),
      );
      expect(answers.map((a) => a.status)).toEqual(ids.map(() => 202));
      expect(reads).toHaveBeenCalledTimes(1);
      expect([...reads.mock.calls[0]![0]].sort()).toEqual(ids);
    } finally {
      reads.mockRestore();
    }
  });

  it('keeps stores apart: another store gets 404 for reads and commands, and never sees the blog listed', async () => {
    await call('POST', '/api/blogs', { blogId: 'h-iso', instanceId: 'shop-a', topic: 'matcha' });
    await waitForStatus('h-iso', 'AWAITING_SELECTION');
    expect((await call('GET', '/api/blogs/h-iso?instanceId=shop-b')).status).toBe(404);
    for (const action of ['select', 'cancel', 'retry']) {
      const res = await call('POST', `/api/blogs/h-iso/${action}`, { instanceId: 'shop-b', ideaIndex: 0 });
      expect(res.status, action).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const taken = await call('POST', '/api/blogs', { blogId: 'h-iso', instanceId: 'shop-b', topic: 'steal it' });
    expect(taken.status).toBe(404);
    const listed = await call('GET', '/api/blogs?instanceId=shop-b');
    expect(listed.body.items.map((b: { blogId: string }) => b.blogId)).not.toContain('h-iso');
    expect((await call('GET', '/api/blogs/h-iso?instanceId=shop-a')).body.status).toBe('AWAITING_SELECTION');
  });

  it('cancels (202), then answers 409 for cancelling again; 404 for an unknown blog', async () => {
    const res = await call('POST', '/api/blogs/h-iso/cancel', { instanceId: 'shop-a' });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('CANCELLED');
    expect((await call('POST', '/api/blogs/h-iso/cancel', { instanceId: 'shop-a' })).status).toBe(409);
    expect((await call('POST', '/api/blogs/nope/cancel', { instanceId: 'shop-a' })).status).toBe(404);
    expect((await call('GET', '/api/blogs/nope')).status).toBe(404);
  });

  it('retries a FAILED blog (202, resumes the failed stage) and answers 409 when not failed', async () => {
    await call('POST', '/api/blogs', {
      blogId: 'h-fail',
      instanceId: 'shop-c',
      idea: { title: 'x' },
      keywords: ['fail:article'],
    });
    const failed = await waitForStatus('h-fail', 'FAILED');
    expect(failed.error).toEqual({
      stage: 'GENERATING_CONTENT',
      code: 'CONTENT_REFUSED',
      message: 'the writer refused',
      attempts: 1,
    });
    expect((await call('POST', '/api/blogs/h-1/retry', { instanceId: 'shop-a' })).status).toBe(409);
    const retried = await call('POST', '/api/blogs/h-fail/retry', { instanceId: 'shop-c' });
    expect(retried.status).toBe(202);
    const again = await waitForStatus('h-fail', 'FAILED'); // the writer still refuses
    expect(again.seq).toBeGreaterThan(failed.seq);
  });

  it('lists newest first with cursor paging, filters by store and status, and checks its query', async () => {
    for (let i = 0; i < 7; i++) {
      await call('POST', '/api/blogs', { blogId: `page-${i}`, instanceId: 'shop-p', idea: { title: `Post ${i}` } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call('GET', `/api/blogs?instanceId=shop-p&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((b: { blogId: string }) => b.blogId));
      cursor = res.body.nextCursor as string | null;
    } while (cursor);
    expect(seen).toEqual(['page-6', 'page-5', 'page-4', 'page-3', 'page-2', 'page-1', 'page-0']);
    const failedOnly = await call('GET', '/api/blogs?status=FAILED');
    expect(failedOnly.body.items.map((b: { blogId: string }) => b.blogId)).toEqual(['h-fail']);
    const everyone = await call('GET', '/api/blogs?limit=500');
    expect(new Set(everyone.body.items.map((b: { instanceId: string }) => b.instanceId)).size).toBeGreaterThan(2);
    for (const q of ['limit=0', 'limit=501', 'status=SLEEPING', 'cursor=garbage', 'instanceId=a%20b']) {
      const res = await call('GET', `/api/blogs?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    }
  });
});
