/**
 * Fail before spending: with Wix configured and no `WIX_DEFAULT_MEMBER_ID`, a `create` without `authorMemberId`
 * could only fail at publishing after ideas, article and image were paid for. It is refused at once with
 * `INVALID_PAYLOAD`, over HTTP (400) and on the command path (`<prefix>.rejected`), and no writer call is made.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandler } from '../../src/bus/command.consumer';
import { encodeJson } from '../../src/bus/bus.port';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { createLogger } from '../../src/logger';
import { createProviders, type Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';

const log = createLogger('silent', 'test');
let dataDir: string;

/** Offline providers whose writer counts its calls: a refused create must cost nothing. */
function counted(p: Providers, calls: string[]): Providers {
  return {
    ...p,
    writer: {
      name: 'counted',
      generateIdeas: (c) => (calls.push(`ideas:${c.blogId}`), p.writer.generateIdeas(c)),
      generateArticle: (c) => (calls.push(`article:${c.blogId}`), p.writer.generateArticle(c)),
    },
  };
}

async function runtimeWith(env: Record<string, string>, calls: string[]): Promise<Runtime> {
  const offline = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'silent' });
  const config = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'silent', ...env });
  const { runtime } = await composeRuntime({
    config,
    database: await openPglite(undefined),
    // Wix is configured, but nothing may reach a publisher here: the offline one stands in.
    providers: () => counted(createProviders(offline, log), calls),
  });
  await runtime.start(false);
  return runtime;
}

const post = (runtime: Runtime, body: unknown) =>
  runtime.http.inject({ method: 'POST', url: '/api/blogs', payload: body as object }).then((r) => ({
    status: r.statusCode,
    body: r.json<{ error?: { code: string; message: string }; blogId?: string }>(),
  }));

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-early-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe('a create that could only fail at publishing is refused before anything is spent', () => {
  const wix = { WIX_APP_ID: 'app', WIX_APP_SECRET: 'secret' };

  it('Wix without a default member: no authorMemberId → 400 INVALID_PAYLOAD over HTTP and rejected over the bus', async () => {
    const calls: string[] = [];
    const runtime = await runtimeWith(wix, calls);
    try {
      const res = await post(runtime, { blogId: 'no-owner', instanceId: 'shop', topic: 'tea' });
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error?.message).toMatch(/authorMemberId.*WIX_DEFAULT_MEMBER_ID/);

      const rejected: Array<Record<string, unknown>> = [];
      runtime.bus.subscribe(runtime.subjects.rejected, (m) =>
        rejected.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>),
      );
      const handler = createCommandHandler({
        intake: runtime.intake,
        bus: runtime.bus,
        subjects: runtime.subjects,
        log,
      });
      const outcome = await handler.handle(
        runtime.subjects.command('create'),
        encodeJson({ blogId: 'no-owner-2', instanceId: 'shop', idea: { title: 'Oolong' } }),
      );
      expect(outcome).toEqual({ kind: 'rejected', code: 'INVALID_PAYLOAD' });
      expect(rejected).toEqual([
        expect.objectContaining({ blogId: 'no-owner-2', instanceId: 'shop', code: 'INVALID_PAYLOAD' }),
      ]);

      // Nothing was created, nothing was spent.
      expect((await runtime.http.inject({ method: 'GET', url: '/api/blogs/no-owner' })).statusCode).toBe(404);
      expect((await runtime.http.inject({ method: 'GET', url: '/api/blogs/no-owner-2' })).statusCode).toBe(404);
      await new Promise((r) => setTimeout(r, 100));
      expect(calls).toEqual([]);

      // Naming the owner is enough.
      const ok = await post(runtime, { blogId: 'owned', instanceId: 'shop', topic: 'tea', authorMemberId: 'm-1' });
      expect(ok.status).toBe(202);
    } finally {
      await runtime.stop();
    }
  });

  it('with WIX_DEFAULT_MEMBER_ID, or without Wix, a create needs no authorMemberId', async () => {
    for (const env of [{ ...wix, WIX_DEFAULT_MEMBER_ID: 'member-1' }, {}]) {
      const runtime = await runtimeWith(env, []);
      try {
        expect((await post(runtime, { instanceId: 'shop', topic: 'tea' })).status).toBe(202);
      } finally {
        await runtime.stop();
      }
    }
  });
});
