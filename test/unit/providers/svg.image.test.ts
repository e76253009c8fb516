import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Article } from '../../../machines/blog.types';
import { createSvgImageMaker, hslToHex, renderSvg, wrapTitle } from '../../../src/providers/offline/svg.image';

const article: Article = { title: 'Bread & <Butter> "for" everyone', excerpt: 'e', markdown: 'm', html: '<p>m</p>' };
let dataDir = '';

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'inkwell-svg-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function call(blogId: string, signal = new AbortController().signal) {
  return { blogId, instanceId: 'store-1', request: { topic: 'tea', keywords: [] }, article, attempt: 1, signal };
}

describe('svg image maker', () => {
  it('writes a 1200x630 svg with the title escaped, and returns a url relative to the store folder', async () => {
    const image = await createSvgImageMaker({ dataDir }).createHeaderImage(call('blog-1'));
    expect(image).toEqual({ url: 'images/blog-1.svg', alt: expect.stringContaining('Bread & <Butter>') as string });
    const svg = await readFile(join(dataDir, 'published', 'store-1', 'images', 'blog-1.svg'), 'utf8');
    expect(svg).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\s*<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('width="1200" height="630"');
    expect(svg).toContain('Bread &amp; &lt;Butter&gt; &quot;for&quot;');
    expect(svg).not.toContain('<Butter>');
    expect(svg).toMatch(/stop-color="#[0-9a-f]{6}"/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('overwrites the same file on a repeated call and leaves no temp files', async () => {
    const maker = createSvgImageMaker({ dataDir });
    await maker.createHeaderImage(call('blog-1'));
    await maker.createHeaderImage(call('blog-1'));
    expect(await readdir(join(dataDir, 'published', 'store-1', 'images'))).toEqual(['blog-1.svg']);
  });

  it('is deterministic per blog and varies the colours between blogs', () => {
    expect(renderSvg('T', 'a')).toBe(renderSvg('T', 'a'));
    expect(renderSvg('T', 'a')).not.toBe(renderSvg('T', 'b'));
  });

  it('wraps a long title over at most four lines', () => {
    const lines = wrapTitle('word '.repeat(60));
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatch(/…$/);
  });

  it('rejects a traversal id and an aborted call', async () => {
    const maker = createSvgImageMaker({ dataDir });
    await expect(maker.createHeaderImage(call('../x'))).rejects.toMatchObject({ code: 'INVALID_ID' });
    const controller = new AbortController();
    controller.abort();
    await expect(maker.createHeaderImage(call('b', controller.signal))).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('hslToHex', () => {
  it('converts the primaries and grey', () => {
    expect(hslToHex(0, 1, 0.5)).toBe('#ff0000');
    expect(hslToHex(120, 1, 0.5)).toBe('#00ff00');
    expect(hslToHex(240, 1, 0.5)).toBe('#0000ff');
    expect(hslToHex(0, 0, 0.5)).toBe('#808080');
  });
});
