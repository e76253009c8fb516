/**
 * A store's commands are applied by its shard (issue 18): one at a time, in arrival order, each until its
 * transition is committed; the loads of the commands waiting start beside the one in progress; another store's
 * commands never wait for them; a lost shard refuses its queued commands, which then go to the store's new owner.
 * And, end to end on the embedded database: a blog of the store in a slow provider call does not hold back a command
 * of another blog of that store (the turn of a command ends at its commit, not when its blog finishes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { createLogger } from '../../src/logger';
import { sleep as abortableSleep } from '../../src/providers/offline/seed';
import { createProviders, type Providers } from '../../src/providers/providers';
import { createShards } from '../../src/runtime/store.shard';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the command queue of a store shard', () => {
  it('applies the commands of one store one at a time, in arrival order; another store does not wait', async () => {
    const shards = createShards({ ttlMs: 60_000, unleased: true });
    const seen: string[] = [];
    const command = (store: string, name: string, ms: number) =>
      shards.route(
        store,
        {
          warm: async () => void seen.push(`${name} loads`),
          apply: async () => {
            seen.push(`${name} starts`);
            await sleep(ms);
            seen.push(`${name} committed`);
            return name;
          },
        },
        undefined,
      );
    const answers = Promise.all([command('s', 'a', 80), command('s', 'b', 0), command('s', 'c', 20)]);
    const other = await command('t', 'x', 0); // arrives after a, b and c, is applied while a is still in progress
    expect(other).toBe('x');
    expect(seen).not.toContain('a committed');
    expect(await answers).toEqual(['a', 'b', 'c']);
    const ofStore = seen.filter((e) => !e.startsWith('x') && !e.endsWith('loads'));
    expect(ofStore).toEqual(['a starts', 'a committed', 'b starts', 'b committed', 'c starts', 'c committed']);
    // The blogs of b and c were loaded at once, beside a (loads that arrive together share one read).
    expect(seen.indexOf('c loads')).toBeLessThan(seen.indexOf('a committed'));
  });

  it('refuses the queued commands of a lost shard, and they go to the store’s new owner', async () => {
    const shards = createShards({ ttlMs: 60_000, route: { waitMs: 5_000, retryMs: 10 } });
    shards.take('s', 1, Date.now());
    shards.claimWith({ claim: () => Promise.resolve({ mine: false, owner: 'node-b' }), stopping: () => false });
    let finish!: (value: string) => void;
    const forward = (owner: string) => Promise.resolve(`forwarded to ${owner}`);
    const first = shards.route('s', { apply: () => new Promise<string>((resolve) => (finish = resolve)) }, forward);
    const second = shards.route('s', { apply: () => Promise.resolve('applied here') }, forward);
    await sleep(10);
    expect(shards.get('s')?.commands).toHaveLength(1); // the second waits for the first's commit
    shards.lose('s');
    expect(await second).toBe('forwarded to node-b');
    finish('first committed'); // the one in progress ends as it would (its writes are fenced by the lost lease)
    expect(await first).toBe('first committed');
  });
});

describe('a slow blog of a store does not hold back another blog of the store (embedded)', () => {
  const SLOW_MS = 4_000;
  let dataDir: string;
  let runtime: Runtime;

  /** Offline providers; the article of a blog with the keyword `slow` takes SLOW_MS. */
  function slowProviders(base: Providers): Providers {
    return {
      ...base,
      writer: {
        ...base.writer,
        generateIdeas: (c) => base.writer.generateIdeas(c),
        generateArticle: async (c) => {
          if (c.request.keywords.includes('slow')) await abortableSleep(SLOW_MS, c.signal);
          return base.writer.generateArticle(c);
        },
      },
    };
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-shard-order-'));
    const config = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'silent' });
    const log = createLogger('silent', 'test');
    runtime = createRuntime({
      config,
      log,
      database: await openPglite(undefined),
      providers: slowProviders(createProviders(config, log)),
      shards: createShards({ ttlMs: config.INKWELL_LEASE_TTL_MS, maxPerStore: config.INKWELL_MAX_ACTIVE_PER_STORE }),
    });
    await runtime.start(false);
  }, 60_000);

  afterAll(async () => {
    await runtime?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function waitForStatus(blogId: string, status: string) {
    for (let i = 0; i < 400; i++) {
      if ((await runtime.intake.get(blogId, 'shop')).status === status) return;
      await sleep(25);
    }
    throw new Error(`${blogId} never reached ${status}`);
  }

  it('answers a select of one blog while another blog of its store is in a slow provider call', async () => {
    const { intake } = runtime;
    await intake.apply('create', { blogId: 'slow-1', instanceId: 'shop', topic: 'tea', keywords: ['slow'] });
    await intake.apply('create', { blogId: 'quick-1', instanceId: 'shop', topic: 'coffee' });
    await waitForStatus('slow-1', 'AWAITING_SELECTION');
    await waitForStatus('quick-1', 'AWAITING_SELECTION');

    const selectedSlow = Date.now();
    const slow = await intake.apply('select', { blogId: 'slow-1', instanceId: 'shop', ideaIndex: 0 });
    expect(slow.blog.status).toBe('PENDING');
    expect(Date.now() - selectedSlow, 'the select waited for its own commit only').toBeLessThan(SLOW_MS / 2);
    await waitForStatus('slow-1', 'GENERATING_CONTENT');

    const started = Date.now();
    const quick = await intake.apply('select', { blogId: 'quick-1', instanceId: 'shop', ideaIndex: 0 });
    const tookMs = Date.now() - started;
    expect(quick.blog.status).toBe('PENDING');
    expect(Date.now() - selectedSlow, 'answered before the slow article was written').toBeLessThan(SLOW_MS);
    expect(tookMs, 'the select waited for its own commit only').toBeLessThan(SLOW_MS / 2);
    expect((await intake.get('slow-1', 'shop')).status).toBe('GENERATING_CONTENT');
  }, 30_000);
});
