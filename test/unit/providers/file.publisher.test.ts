import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Article } from '../../../machines/blog.types';
import { StageFailureError } from '../../../src/errors';
import { createFilePublisher } from '../../../src/providers/offline/file.publisher';
import type { PublishCall } from '../../../src/providers/publisher.port';

const article: Article = {
  title: 'Tea & <Toast>',
  excerpt: 'Why "tea" matters',
  markdown: '',
  html: '<h2>Part</h2><p>Body</p><script>alert(1)</script><img src="x.png" onerror="alert(2)">',
};
let dataDir = '';

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'inkwell-pub-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function call(blogId: string, instanceId = 'store-1', signal = new AbortController().signal): PublishCall {
  const image = { url: `images/${blogId}.svg`, alt: 'Header' };
  return { blogId, instanceId, request: { topic: 't', keywords: [] }, article, image, attempt: 1, signal };
}

const storeFile = (...parts: string[]): string => join(dataDir, 'published', 'store-1', ...parts);
const readLog = async (): Promise<string[]> => (await readFile(storeFile('publish.log'), 'utf8')).trim().split('\n');

describe('file publisher', () => {
  it('writes a standalone, escaped, sanitized page, logs the publish and returns a file url', async () => {
    const post = await createFilePublisher({ dataDir }).publish(call('blog-1'));
    expect(post).toEqual({ id: 'blog-1', url: pathToFileURL(storeFile('posts', 'blog-1.html')).href });
    const page = await readFile(storeFile('posts', 'blog-1.html'), 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toContain('<title>Tea &amp; &lt;Toast&gt;</title>');
    expect(page).toContain('<img src="../images/blog-1.svg" alt="Header" />');
    expect(page).toContain('<h2>Part</h2><p>Body</p>');
    expect(page).toContain('<p class="excerpt">Why &quot;tea&quot; matters</p>');
    expect(page).not.toMatch(/<script|onerror|alert/);
    const lines = await readLog();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ blogId: 'blog-1', instanceId: 'store-1', postId: 'blog-1' });
  });

  it('publishes a blog at most once: a repeat returns the same post and does not log again', async () => {
    const first = await createFilePublisher({ dataDir }).publish(call('blog-1'));
    const again = await createFilePublisher({ dataDir }).publish(call('blog-1'));
    expect(again).toEqual(first);
    expect(await readLog()).toHaveLength(1);
  });

  it('publishes once when two calls for the same blog race', async () => {
    const publisher = createFilePublisher({ dataDir });
    const posts = await Promise.all([publisher.publish(call('blog-1')), publisher.publish(call('blog-1'))]);
    expect(posts[0]).toEqual(posts[1]);
    expect(await readLog()).toHaveLength(1);
    expect((await readdir(storeFile())).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('logs every publish attempt, won or lost, but not a repeat that finds the page published', async () => {
    const publisher = createFilePublisher({ dataDir });
    await Promise.all([publisher.publish(call('blog-1')), publisher.publish(call('blog-1'))]);
    await publisher.publish(call('blog-1'));
    const attempts = (await readFile(storeFile('publish.attempts.log'), 'utf8')).trim().split('\n');
    expect(attempts.map((l) => JSON.parse(l) as { blogId: string; pid: number })).toEqual([
      expect.objectContaining({ blogId: 'blog-1', pid: process.pid }),
      expect.objectContaining({ blogId: 'blog-1', pid: process.pid }),
    ]);
    expect(await readLog()).toHaveLength(1);
  });

  it("lists the store's posts in its index", async () => {
    const publisher = createFilePublisher({ dataDir });
    await publisher.publish(call('blog-1'));
    await publisher.publish(call('blog-2'));
    await publisher.publish(call('blog-3', 'store-2'));
    const index = await readFile(storeFile('index.html'), 'utf8');
    expect(index).toContain('href="posts/blog-1.html"');
    expect(index).toContain('href="posts/blog-2.html"');
    expect(index).not.toContain('blog-3');
    expect(index).toContain('Tea &amp; &lt;Toast&gt;');
  });

  it('rejects traversal ids and reserved names without writing anything', async () => {
    const publisher = createFilePublisher({ dataDir });
    for (const bad of [call('../../etc/x'), call('ok', '../other'), call('a/b'), call('')]) {
      const promise = publisher.publish(bad);
      await expect(promise).rejects.toBeInstanceOf(StageFailureError);
      await expect(promise).rejects.toMatchObject({ code: 'INVALID_ID', retryable: false });
    }
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('rejects an aborted call without publishing', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      createFilePublisher({ dataDir }).publish(call('b', 'store-1', controller.signal)),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(await readdir(dataDir)).toEqual([]);
  });
});
