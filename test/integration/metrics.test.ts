/**
 * `GET /metrics` during a run (embedded: PGlite in memory, offline providers slowed down): blogs by status and
 * store, transitions, stage-duration histograms, provider calls and errors move between two scrapes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { StageFailureError } from '../../src/errors';
import { boundStores } from '../../src/http/metrics';
import { withLatency } from '../../src/providers/latency';
import type { Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';

let dataDir: string;
let runtime: Runtime;

// Prometheus' own linter (Debian's `prometheus` package; `.ci/run` installs it). Without it the check skips, saying
// so, except under CI=true, where its absence fails.
const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool && process.env.CI === 'true') throw new Error('promtool is missing: .ci/run installs `prometheus`');
if (!promtool) console.warn('skipping `promtool check metrics`: promtool not found (apt-get install prometheus)');
/** The Node defaults of prom-client, which promtool flags (`nodejs_active_handles_total` is a gauge): not ours. */
const NODE_DEFAULTS = /^(nodejs|process)_/;

/** The first image call of a `flaky` blog fails with a retryable error. */
function flaky(base: Providers): Providers {
  const failed = new Set<string>();
  return {
    ...base,
    images: {
      name: base.images.name,
      createHeaderImage: (c) => {
        if (!c.request.keywords.includes('flaky') || failed.has(c.blogId)) return base.images.createHeaderImage(c);
        failed.add(c.blogId);
        return Promise.reject(new StageFailureError('RATE_LIMITED', 'scripted rate limit', true));
      },
    },
  };
}

async function scrape(): Promise<string> {
  const res = await runtime.http.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  return res.body;
}

/** Sum of every sample of `name` whose labels contain all of `labels`. */
function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}

async function waitUntil(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-metrics-'));
  const config = loadConfig({ INKWELL_DATA_DIR: dataDir, INKWELL_LOG_LEVEL: 'silent', INKWELL_RETRY_BASE_MS: '50' });
  const latency = { ideas: 60, article: 120, image: 80, publish: 60 };
  ({ runtime } = await composeRuntime({
    config,
    database: await openPglite(undefined),
    providers: (configured) => flaky(withLatency(configured(), latency)),
  }));
  await runtime.start(false);
}, 60_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('GET /metrics (embedded)', () => {
  it('serves Prometheus text without a token, with process metrics and every Inkwell family', async () => {
    const text = await scrape();
    for (const family of [
      'process_cpu_seconds_total',
      'inkwell_blogs',
      'inkwell_blogs_by_store',
      'inkwell_transitions_total',
      'inkwell_stage_duration_seconds',
      'inkwell_provider_calls_total',
      'inkwell_errors_total',
      'inkwell_retries_total',
      'inkwell_limiter_queue_depth',
      'inkwell_limiter_wait_seconds',
      'inkwell_leases_held',
      'inkwell_outbox_lag',
    ]) {
      expect(text, family).toContain(`# TYPE ${family} `);
    }
  });

  it('moves counters and histograms between two scrapes of a run', async () => {
    const blogs = Array.from({ length: 6 }, (_, i) => ({
      blogId: `m-${i}`,
      instanceId: i % 2 ? 'shop-a' : 'shop-b',
      idea: { title: `Idea ${i}` },
      keywords: i === 0 ? ['flaky'] : [],
    }));
    blogs.push({ blogId: 'm-topic', instanceId: 'shop-a', topic: 'tea' } as never);
    for (const body of blogs) {
      const res = await runtime.http.inject({ method: 'POST', url: '/api/blogs', payload: body });
      expect(res.statusCode).toBe(202);
    }
    await waitUntil(async () => sum(await scrape(), 'inkwell_provider_calls_total') > 0, 'a provider call');
    const first = await scrape();
    expect(sum(first, 'inkwell_blogs')).toBe(7);
    expect(sum(first, 'inkwell_transitions_total', { from: 'NEW', to: 'PENDING' })).toBe(7);

    await waitUntil(async () => sum(await scrape(), 'inkwell_blogs', { status: 'DONE' }) === 6, 'six blogs DONE');
    const second = await scrape();
    expect(sum(second, 'inkwell_transitions_total')).toBeGreaterThan(sum(first, 'inkwell_transitions_total'));
    expect(sum(second, 'inkwell_transitions_total', { from: 'PUBLISHING', to: 'DONE' })).toBe(6);
    expect(sum(second, 'inkwell_provider_calls_total')).toBeGreaterThan(sum(first, 'inkwell_provider_calls_total'));
    expect(sum(second, 'inkwell_provider_calls_total', { stage: 'publish', outcome: 'ok' })).toBe(6);
    const count = 'inkwell_stage_duration_seconds_count';
    expect(sum(second, count)).toBeGreaterThan(sum(first, count));
    expect(sum(second, count, { stage: 'GENERATING_CONTENT' })).toBeGreaterThanOrEqual(6);
    expect(sum(second, 'inkwell_stage_duration_seconds_sum', { stage: 'GENERATING_CONTENT' })).toBeGreaterThan(0.2);
    expect(sum(second, 'inkwell_errors_total', { stage: 'image', code: 'RATE_LIMITED', retryable: 'true' })).toBe(1);
    expect(sum(second, 'inkwell_retries_total', { stage: 'image', code: 'RATE_LIMITED' })).toBe(1);
    expect(sum(second, 'inkwell_blogs', { status: 'AWAITING_SELECTION' })).toBe(1);
    expect(sum(second, 'inkwell_blogs_by_store', { instance_id: 'shop-a' })).toBe(4);
    expect(sum(second, 'inkwell_blogs_by_store', { instance_id: 'shop-b' })).toBe(3);
    expect(second).toMatch(/^inkwell_outbox_lag \d+$/m);
  });

  it.skipIf(!promtool)('passes `promtool check metrics`, except the Node defaults prom-client names', async () => {
    // After the run above: every family has samples, histograms and labelled counters included.
    const text = await scrape();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = `${lint.stdout}${lint.stderr}`
      .split('\n')
      .filter((line) => line.trim() !== '' && !NODE_DEFAULTS.test(line));
    expect(problems).toEqual([]);
    // promtool answers 0 when clean, 3 for lint problems only; anything else is a parse error.
    expect([0, 3]).toContain(lint.status);
  });

  it('bounds the store label: the busiest stores by name, the rest summed as "other"', () => {
    const byStore = { a: { DONE: 5 }, b: { DONE: 1 }, c: { DONE: 3, FAILED: 1 }, d: { PENDING: 2 } };
    expect(boundStores(byStore, 2)).toEqual([
      ['a', { DONE: 5 }],
      ['c', { DONE: 3, FAILED: 1 }],
      ['other', { DONE: 1, PENDING: 2 }],
    ]);
  });
});
