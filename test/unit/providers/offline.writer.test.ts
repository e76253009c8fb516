import { describe, expect, it } from 'vitest';
import type { BlogRequest } from '../../../machines/blog.types';
import { StageFailureError } from '../../../src/errors';
import { createOfflineWriter } from '../../../src/providers/offline/offline.writer';
import type { TextCall } from '../../../src/providers/text.port';

const request: BlogRequest = { topic: 'sourdough baking', keywords: ['starter', 'hydration'], tone: 'friendly' };

function callFor(blogId: string, req: BlogRequest = request, signal = new AbortController().signal): TextCall {
  return { blogId, instanceId: 'store-1', request: req, attempt: 1, signal };
}

describe('offline writer: ideas', () => {
  it('returns 3 to 5 distinct ideas about the topic, titles within 200 characters', async () => {
    const ideas = await createOfflineWriter().generateIdeas(callFor('blog-1'));
    expect(ideas.length).toBeGreaterThanOrEqual(3);
    expect(ideas.length).toBeLessThanOrEqual(5);
    expect(new Set(ideas.map((i) => i.title)).size).toBe(ideas.length);
    for (const idea of ideas) {
      expect(idea.title.length).toBeLessThanOrEqual(200);
      expect(idea.summary.length).toBeGreaterThan(10);
      expect(`${idea.title} ${idea.summary}`.toLowerCase()).toContain('sourdough');
    }
  });

  it('is deterministic for the same blog and topic', async () => {
    const writer = createOfflineWriter();
    expect(await writer.generateIdeas(callFor('blog-1'))).toEqual(await writer.generateIdeas(callFor('blog-1')));
  });

  it('keeps titles short when the topic is very long, and copes with no keywords', async () => {
    const ideas = await createOfflineWriter().generateIdeas(callFor('b', { topic: 'word '.repeat(100), keywords: [] }));
    for (const idea of ideas) expect(idea.title.length).toBeLessThanOrEqual(200);
  });
});

describe('offline writer: article', () => {
  it('writes a titled article of several sections, with sanitized html rendered from the markdown', async () => {
    const writer = createOfflineWriter();
    const [idea] = await writer.generateIdeas(callFor('blog-1'));
    if (!idea) throw new Error('no idea');
    const article = await writer.generateArticle({ ...callFor('blog-1'), idea });
    expect(article.title).toBe(idea.title);
    expect(article.excerpt.length).toBeGreaterThan(0);
    const words = article.markdown.split(/\s+/).length;
    expect(words).toBeGreaterThanOrEqual(400);
    expect(words).toBeLessThanOrEqual(700);
    expect(article.markdown.match(/^## /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(article.html).toContain('<h2>');
    expect(article.html).toContain('<li>');
    expect(article.html).not.toContain('<script');
    expect(await writer.generateArticle({ ...callFor('blog-1'), idea })).toEqual(article);
  });
});

describe('offline writer: abort', () => {
  it('rejects with a non-retryable StageFailureError when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const promise = createOfflineWriter().generateIdeas(callFor('b', request, controller.signal));
    await expect(promise).rejects.toBeInstanceOf(StageFailureError);
    await expect(promise).rejects.toMatchObject({ code: 'ABORTED', retryable: false });
  });

  it('rejects during its delay when the signal fires', async () => {
    const controller = new AbortController();
    const idea = { title: 'T', summary: 'S' };
    const promise = createOfflineWriter({ delayMs: 10_000 }).generateArticle({
      ...callFor('b', request, controller.signal),
      idea,
    });
    setTimeout(() => controller.abort(), 5);
    await expect(promise).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
