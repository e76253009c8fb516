/**
 * Stopping `npm start` the way supervisors and terminals do: every signal goes to the whole process group (npm and
 * node; systemd's KillMode=control-group, `kill -TERM -<pgid>`, Ctrl-C), so node gets each one twice, directly and
 * through npm. One drain whatever repeats, exit 0 from npm itself; a forced stop only on purpose (Ctrl-C again), and
 * nothing acknowledged is lost either way: a restarted process finishes every blog a 202 answered, publishing each once.
 * In test/faults because each case starts `npm start` several times (slow). Each case repeats SIGNAL_RUNS times
 * (default 2, to keep CI short; the 20-in-a-row was run locally with SIGNAL_RUNS=20).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { openAiReplies, startFakeOpenAi, type FakeOpenAi } from '../support/fake.openai';
import { http, killGroup, spawnNpmStart, until, type NpmStart } from '../support/process';
import { describeWithPostgres } from '../support/servers';

const RUNS = Number(process.env.SIGNAL_RUNS ?? 2);
const idea = { title: 'Seasoning cast iron', summary: 'Oil, heat, patience.' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await describeWithPostgres('stopping npm start by process-group signals (needs PostgreSQL)', (db) => {
  let dataDir: string;
  let client: pg.Client;
  let openai: FakeOpenAi;
  const running: NpmStart[] = [];

  /** `npm start` on this file's database and data dir; NATS and Redis unset (HTTP is the way in). */
  function start(nodeId: string): NpmStart {
    const run = spawnNpmStart({
      DATABASE_URL: db().url,
      INKWELL_DATA_DIR: dataDir,
      PORT: '0',
      NATS_URL: '',
      REDIS_URL: '',
      OPENAI_API_KEY: 'sk-fake',
      OPENAI_BASE_URL: openai.url,
      REPLICATE_API_TOKEN: '',
      WIX_APP_ID: '',
      INKWELL_NODE_ID: nodeId,
      INKWELL_LEASE_TTL_MS: '4000',
      INKWELL_LOG_LEVEL: 'debug',
    });
    running.push(run);
    return run;
  }

  async function listening(run: NpmStart): Promise<string> {
    return `http://127.0.0.1:${(await run.logged('listening')).port as number}`;
  }

  /** Creates blogs over HTTP until `stop()`; `acked` holds each blog a 202 answered, `refused` the other codes. */
  function keepCreating(base: string, instanceIds: string[]) {
    const acked: string[] = [];
    const refused: string[] = [];
    let stopped = false;
    const loop = (async () => {
      for (let i = 0; !stopped; i++) {
        const blogId = `b-${randomUUID().slice(0, 8)}`;
        const instanceId = instanceIds[i % instanceIds.length]!;
        // A connection refused or cut is no answer: neither acknowledged nor refused.
        const res = await http(base, 'POST', '/api/blogs', { blogId, instanceId, idea }).catch(() => undefined);
        if (res?.status === 202) acked.push(blogId);
        else if (res) refused.push(`${res.status} ${res.body?.error?.code}`);
        await sleep(res ? 25 : 100);
      }
    })();
    return { acked, refused, stop: () => ((stopped = true), loop) };
  }

  /** Polls `path` until `stop()`; `seen` holds each distinct answer, in order. */
  function watchHealth(base: string, path = '/healthz') {
    const seen: string[] = [];
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        const res = await fetch(`${base}${path}`).catch(() => undefined);
        const answer = res ? `${res.status} ${await res.text()}` : 'refused';
        if (seen.at(-1) !== answer) seen.push(answer);
        await sleep(20);
      }
    })();
    return { seen, stop: () => ((stopped = true), loop) };
  }

  async function exitOf(run: NpmStart, withinMs: number) {
    const started = Date.now();
    const code = await Promise.race([run.exited, sleep(withinMs).then(() => 'still running')]);
    return { code, ms: Date.now() - started, log: run.output.slice(-15).join('\n') };
  }

  /** Restarts `npm start`, waits until every blog in `ids` is DONE, and checks each was published exactly once. */
  async function finishAll(ids: string[], instanceIds: string[]) {
    openai.script(() => undefined);
    const after = start(`after-${randomUUID().slice(0, 6)}`);
    await listening(after);
    await until(
      `${ids.length} blogs DONE`,
      async () => {
        const { rows } = await client.query<{ n: number }>(
          "select count(*)::int as n from blogs where blog_id = any($1) and status = 'DONE'",
          [ids],
        );
        return rows[0]!.n === ids.length ? true : undefined;
      },
      60_000,
      200,
    );
    const published: string[] = [];
    for (const store of instanceIds) {
      const log = await readFile(path.join(dataDir, 'published', store, 'publish.log'), 'utf8').catch(() => '');
      for (const line of log.trim().split('\n').filter(Boolean)) {
        published.push((JSON.parse(line) as { blogId: string }).blogId);
      }
    }
    expect(published.sort()).toEqual([...ids].sort());
    after.signal('SIGTERM');
    expect((await exitOf(after, 20_000)).code).toBe(0);
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-signals-'));
    client = new pg.Client({ connectionString: db().url });
    await client.connect();
    openai = await startFakeOpenAi({ apiKey: 'sk-fake' });
  });
  afterEach(() => running.splice(0).forEach(killGroup));
  afterAll(async () => {
    await client?.end();
    await openai?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`SIGTERM twice within 50 ms during work: one drain, /healthz 503 draining, exit 0, nothing lost (x${RUNS})`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const stores = [`t${run}-a-${randomUUID().slice(0, 4)}`, `t${run}-b-${randomUUID().slice(0, 4)}`];
      openai.script(() => openAiReplies.slow(1_500));
      const rt = start(`term-${run}`);
      const base = await listening(rt);
      const creator = keepCreating(base, stores);
      const calls = openai.completions().length;
      await until('article calls in flight', async () => (openai.completions().length >= calls + 4 ? true : undefined));
      const health = watchHealth(base);
      const live = watchHealth(base, '/livez');
      rt.signal('SIGTERM');
      await sleep(Math.floor(Math.random() * 50));
      rt.signal('SIGTERM');
      const { code, ms, log } = await exitOf(rt, 20_000);
      await Promise.all([creator.stop(), health.stop(), live.stop()]);
      expect(code, log).toBe(0);
      expect(ms).toBeLessThan(15_000);
      const lines = rt.output.filter((l) => l.includes('"msg":"draining"'));
      expect(lines, log).toHaveLength(1);
      expect(rt.output.join('\n')).not.toMatch(/second (signal|SIGINT)/);
      expect(health.seen, health.seen.join(' | ')).toContain('503 {"status":"draining"}');
      expect(health.seen.slice(health.seen.indexOf('503 {"status":"draining"}'))).not.toContain('200 {"status":"ok"}');
      // Liveness holds through the drain; commands sent during it are refused as retryable, never half-applied.
      expect(live.seen).toEqual(['200 {"status":"ok"}', 'refused']);
      expect(creator.refused.length, creator.refused.join()).toBeGreaterThan(0);
      // (In its last milliseconds, while HTTP closes, Fastify's own 503 may answer instead.)
      expect(creator.refused, creator.refused.join()).toContain('503 DRAINING');
      for (const answer of creator.refused) expect(answer).toMatch(/^503 /);
      expect(creator.acked.length).toBeGreaterThan(0);
      await finishAll(creator.acked, stores);
    }
  }, 600_000);

  it(`SIGINT twice, a second apart, forces: exit 130 before the drain ends, nothing acknowledged lost (x${RUNS})`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const stores = [`i${run}-a-${randomUUID().slice(0, 4)}`, `i${run}-b-${randomUUID().slice(0, 4)}`];
      openai.script(() => openAiReplies.slow(30_000)); // the drain would wait its 5 s grace for these
      const rt = start(`int-${run}`);
      const base = await listening(rt);
      const creator = keepCreating(base, stores);
      const calls = openai.completions().length;
      await until('article calls in flight', async () => (openai.completions().length >= calls + 4 ? true : undefined));
      rt.signal('SIGINT'); // Ctrl-C: node gets it from the terminal and again from npm
      await rt.logged('draining');
      await sleep(1_200);
      rt.signal('SIGINT'); // Ctrl-C again
      const { code, ms, log } = await exitOf(rt, 10_000);
      await creator.stop();
      expect(code, log).toBe(130);
      expect(ms).toBeLessThan(2_000);
      expect(rt.output.filter((l) => /second SIGINT/.test(l)).length, log).toBeGreaterThanOrEqual(1);
      await finishAll(creator.acked, stores);
    }
  }, 600_000);

  it(`SIGTERM or SIGINT during start-up stops cleanly with exit 0 (x${RUNS})`, async () => {
    // While node loads tsx and the sources (a second or two; node's own boot, before any of our code, is its first
    // 100-300 ms), after the configuration is read (opening and migrating the database follow), and after
    // rehydration, which races listening (some milliseconds later): that one may stop before or after it listens.
    const points: Array<[string, (run: NpmStart) => Promise<unknown>, boolean]> = [
      ['loading', async (run) => (await run.child(), sleep(350)), false],
      ['starting', (run) => run.logged('starting'), false],
      ['rehydrated', (run) => run.logged('rehydrated working blogs'), true],
    ];
    for (let run = 0; run < RUNS; run++) {
      for (const [point, reached, mayListen] of points) {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) {
          const rt = start(`boot-${run}`);
          await reached(rt);
          rt.signal(signal);
          await sleep(Math.floor(Math.random() * 50));
          rt.signal(signal);
          const { code, log } = await exitOf(rt, 20_000);
          expect(code, `${signal} at ${point}:\n${log}`).toBe(0);
          if (!mayListen)
            expect(
              rt.output.some((l) => l.includes('"msg":"listening"')),
              log,
            ).toBe(false);
        }
      }
    }
    // Nothing was left half-done: the next start migrates, listens and stops as usual.
    const rt = start('after-boot');
    await listening(rt);
    rt.signal('SIGTERM');
    expect((await exitOf(rt, 20_000)).code).toBe(0);
  }, 600_000);
});
