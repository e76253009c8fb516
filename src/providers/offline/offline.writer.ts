import type { Article, Idea } from '../../../machines/blog.types';
import { renderMarkdown } from '../html';
import type { TextCall, TextWriter } from '../text.port';
import { clip, keywordsOf, writeBody, writeIdeas, type WritingContext } from './offline.templates';
import { createRandom, hashString, sleep } from './seed';

/** Options of the offline writer; `delayMs` slows each call so a demo can show progress. */
export interface OfflineWriterOptions {
  delayMs?: number;
}

/** The topic to write about: the request's, else the given idea's title, else its first keyword. */
function topicOf(call: TextCall, idea?: Idea): string {
  const topic = call.request.topic ?? idea?.title ?? call.request.idea?.title ?? call.request.keywords[0];
  // Clipped: a 500-character topic would make every heading and sentence unreadable.
  return clip(topic ?? 'our latest collection', 120);
}

/** The templates' context, seeded by blog and topic so a retry or a restart writes the same text. */
function contextOf(call: TextCall, salt: string, idea?: Idea): WritingContext {
  const topic = topicOf(call, idea);
  return {
    topic,
    keywords: keywordsOf(call.request.keywords),
    tone: call.request.tone ?? '',
    random: createRandom(hashString(`${call.blogId}|${topic}|${salt}`)),
  };
}

/** The article for `idea`: markdown from templates, and the same rendered as sanitized HTML. */
function writeArticle(c: WritingContext, idea: Idea): Article {
  const markdown = writeBody(c, idea);
  return {
    title: clip(idea.title, 200),
    excerpt: clip(idea.summary || `A practical look at ${c.topic}.`, 300),
    markdown,
    html: renderMarkdown(markdown),
  };
}

/** A text writer with no network and no key: deterministic ideas and articles from templates. */
export function createOfflineWriter(opts: OfflineWriterOptions = {}): TextWriter {
  const delayMs = Math.max(0, opts.delayMs ?? 0);
  return {
    name: 'offline',
    async generateIdeas(call) {
      await sleep(delayMs, call.signal);
      return writeIdeas(contextOf(call, 'ideas'));
    },
    async generateArticle(call) {
      await sleep(delayMs, call.signal);
      return writeArticle(contextOf(call, call.idea.title, call.idea), call.idea);
    },
  };
}
