/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a listening runtime on
 * PGlite with slowed offline providers: it asks for the API token, shows live counts changing, opens a blog's
 * timeline, retries a failed blog with its button, picks an idea of a blog awaiting selection and cancels a blog from
 * its timeline. Saves the screenshot shown in the README.
 * Without chromium it fails under CI=true and is skipped (saying why) elsewhere.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { StageFailureError } from '../../src/errors';
import { withLatency } from '../../src/providers/latency';
import type { Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-token';
const SCREENSHOT = path.resolve('docs/dashboard.png');
const hasChromium = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';
if (!hasChromium && !inCi)
  console.warn(`dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

let dirs: string[] = [];
let runtime: Runtime | undefined;
let context: BrowserContext | undefined;
let page: Page;
let base: string;
let publishFails = true;
let prompts = 0;

/** Publishing a `reject-post` blog fails for good while `publishFails` holds. */
function rejecting(p: Providers): Providers {
  return {
    ...p,
    publisher: {
      name: p.publisher.name,
      publish: (c) =>
        publishFails && c.request.keywords.includes('reject-post')
          ? Promise.reject(new StageFailureError('POST_REJECTED', 'the store rejected the post', false))
          : p.publisher.publish(c),
    },
  };
}

/** A blog as the API returns it (only what these tests read). */
interface ApiBlog {
  status?: string;
  ideas?: { title: string }[];
  idea?: { title: string };
}

async function api(method: 'GET' | 'POST', url: string, body?: unknown): Promise<ApiBlog> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as ApiBlog;
}

const count = (status: string) => page.locator(`[data-count="${status}"]`).textContent().then(Number);

describe.skipIf(!hasChromium && !inCi)('dashboard in chromium', () => {
  beforeAll(async () => {
    if (!hasChromium) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)`);
    const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-dash-'));
    const profile = await mkdtemp(path.join(tmpdir(), 'inkwell-chromium-'));
    dirs = [dataDir, profile];
    const config = loadConfig({
      INKWELL_DATA_DIR: dataDir,
      INKWELL_API_TOKEN: TOKEN,
      INKWELL_LOG_LEVEL: 'silent',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    const latency = { ideas: 400, article: 1500, image: 700, publish: 400 };
    ({ runtime } = await composeRuntime({
      config,
      database: await openPglite(undefined),
      providers: (configured) => rejecting(withLatency(configured(), latency)),
      drainGraceMs: 200,
    }));
    const { port } = await runtime.start();
    base = `http://127.0.0.1:${port}`;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1050 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (dialog) => {
      prompts += 1;
      void dialog.accept(TOKEN);
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await runtime?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('asks for the API token, then streams events live', async () => {
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('#stream').textContent(), { timeout: 15_000 }).toBe('live');
    expect(prompts).toBe(1);
    expect(await count('DONE')).toBe(0);
  });

  it('shows the live counts change while blogs run', async () => {
    for (let i = 0; i < 6; i++) {
      const body = { blogId: `d-${i}`, instanceId: i % 2 ? 'shop-north' : 'shop-south', idea: { title: `Idea ${i}` } };
      await api('POST', '/api/blogs', body);
    }
    await api('POST', '/api/blogs', {
      blogId: 'd-rejected',
      instanceId: 'shop-north',
      idea: { title: 'A post the store rejects' },
      keywords: ['reject-post'],
    });
    await expect.poll(() => count('GENERATING_CONTENT'), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => count('DONE'), { timeout: 30_000 }).toBe(6);
    await expect.poll(() => count('FAILED'), { timeout: 15_000 }).toBe(1);
    await expect(
      page.locator('table.store[data-store="shop-south"] [data-store-count="DONE"]').textContent(),
    ).resolves.toBe('3');
    expect(await page.locator('#events li').count()).toBeGreaterThanOrEqual(7 * 5);
  });

  it('creates a blog with the form', async () => {
    await page.fill('input[name="instanceId"]', 'shop-east');
    await page.fill('input[name="topic"]', 'Autumn tea blends');
    await page.click('#create button[type="submit"]');
    await expect.poll(() => page.locator('#create-result').textContent(), { timeout: 10_000 }).toMatch(/^created /);
    await expect.poll(() => count('AWAITING_SELECTION'), { timeout: 15_000 }).toBe(1);
  });

  it("opens a blog's timeline when it is clicked", async () => {
    await page.locator('#events a.blog[data-blog="d-1"]').first().click();
    await expect.poll(() => page.locator('#timeline li').count(), { timeout: 10_000 }).toBe(5);
    const text = await page.locator('#timeline').textContent();
    for (const status of ['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'DONE']) {
      expect(text).toContain(status);
    }
  });

  it('lists the failed blog with its reason and retries it with the button', async () => {
    const row = page.locator('#failed tr[data-failed="d-rejected"]');
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('POST_REJECTED');
    for (let i = 0; i < 4; i++) {
      await api('POST', '/api/blogs', {
        blogId: `d-more-${i}`,
        instanceId: `shop-${i % 2 ? 'west' : 'south'}`,
        idea: { title: `More ${i}` },
      });
    }
    await page.locator('#events a.blog[data-blog="d-rejected"]').first().click();
    await expect.poll(() => page.locator('#timeline').textContent(), { timeout: 10_000 }).toContain('POST_REJECTED');
    await expect.poll(() => count('GENERATING_CONTENT'), { timeout: 10_000 }).toBeGreaterThan(0);
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    publishFails = false;
    await row.locator('button.retry').click();
    await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(0);
    await expect.poll(async () => (await api('GET', '/api/blogs/d-rejected')).status, { timeout: 15_000 }).toBe('DONE');
    await expect.poll(() => count('FAILED'), { timeout: 10_000 }).toBe(0);
  });

  it('picks the second idea of a blog awaiting selection in the page, and the blog is written from it', async () => {
    await api('POST', '/api/blogs', { blogId: 'd-pick', instanceId: 'shop-pick', topic: 'Winter gardening' });
    const second = page.locator('[data-awaiting="d-pick"] li[data-idea="1"]');
    await expect.poll(() => second.count(), { timeout: 15_000 }).toBe(1);
    const { ideas } = await api('GET', '/api/blogs/d-pick');
    await expect(second.locator('b').textContent()).resolves.toBe(ideas![1]!.title);
    await second.locator('button.pick').click();
    await expect.poll(async () => (await api('GET', '/api/blogs/d-pick')).status, { timeout: 20_000 }).toBe('DONE');
    expect((await api('GET', '/api/blogs/d-pick')).idea).toMatchObject({ title: ideas![1]!.title });
    await expect.poll(() => page.locator('[data-awaiting="d-pick"]').count(), { timeout: 10_000 }).toBe(0);
  });

  it('cancels a blog from its timeline, and the timeline shows it ended', async () => {
    await api('POST', '/api/blogs', { blogId: 'd-cancel', instanceId: 'shop-pick', topic: 'Never mind' });
    const link = page.locator('[data-awaiting="d-cancel"] a.blog');
    await expect.poll(() => link.count(), { timeout: 15_000 }).toBe(1);
    await link.click();
    const cancel = page.locator('#timeline-actions button.cancel');
    await expect.poll(() => cancel.count(), { timeout: 10_000 }).toBe(1);
    await cancel.click();
    await expect
      .poll(async () => (await api('GET', '/api/blogs/d-cancel')).status, { timeout: 10_000 })
      .toBe('CANCELLED');
    await expect.poll(() => page.locator('#timeline').textContent(), { timeout: 10_000 }).toContain('CANCELLED');
    await expect.poll(() => cancel.count(), { timeout: 10_000 }).toBe(0);
  });
});
