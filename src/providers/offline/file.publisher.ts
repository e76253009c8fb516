import { appendFile, link, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { PublishedPost } from '../../../machines/blog.types';
import { escapeHtml, sanitizeHtml } from '../html';
import type { PublishCall, Publisher } from '../publisher.port';
import { assertNotAborted } from './seed';
import { assertId, storePath, tempPathFor, writeFileAtomic } from './store.files';

/** Where the file publisher writes: `<dataDir>/published/<instanceId>/` (index.html, posts/, publish.log, publish.attempts.log). */
export interface FilePublisherOptions {
  dataDir: string;
}

const STYLE = `body{font:18px/1.6 Georgia,serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
img{max-width:100%;height:auto;border-radius:8px}h1,h2,h3{font-family:system-ui,sans-serif;line-height:1.25}
.excerpt{font-size:1.15rem;color:#555}a{color:#2456a6}`;

/** A standalone page; the article is sanitized again because it is generated content. */
function renderPage(call: PublishCall): string {
  const { article, image } = call;
  const lang = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(call.request.language ?? '') ? call.request.language : 'en';
  // Only the image and the article are generated markup; the title and excerpt are plain text, escaped here.
  // Local images are relative to the store folder; pages live one level down, in posts/.
  const src = image && !/^[a-z][a-z0-9+.-]*:/i.test(image.url) ? `../${image.url}` : image?.url;
  const img = image && src ? sanitizeHtml(`<img src="${escapeHtml(src)}" alt="${escapeHtml(image.alt)}">`) : '';
  const body = `${img}<h1>${escapeHtml(article.title)}</h1>
<p class="excerpt">${escapeHtml(article.excerpt)}</p>
${sanitizeHtml(article.html)}`;
  return `<!doctype html>
<html lang="${escapeHtml(lang ?? 'en')}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(article.title)}</title><style>${STYLE}</style></head>
<body><article>${body}</article><p><a href="../index.html">All posts</a></p></body></html>
`;
}

/**
 * Writes `content` at `target` only if nothing is there yet: hard-linking a complete temp file fails with EEXIST
 * when the page exists, so two racing publishes of one blog cannot both win, and no reader sees a partial page.
 */
async function createExclusive(target: string, content: string, beforeLink: () => Promise<void>): Promise<boolean> {
  const temp = tempPathFor(target);
  await writeFile(temp, content, 'utf8');
  try {
    await beforeLink();
    await link(temp, target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Whether `file` exists; other errors (permissions, I/O) are real failures and propagate. */
async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** One JSON line per real publish: the audit trail that proves a blog was published exactly once. */
async function logPublish(storeDir: string, postId: string, call: PublishCall): Promise<void> {
  const line = { blogId: call.blogId, instanceId: call.instanceId, postId, at: new Date().toISOString() };
  await appendFile(`${storeDir}/publish.log`, `${JSON.stringify(line)}\n`, 'utf8');
}

/**
 * One JSON line per publish ATTEMPT, written just before the exclusive create: what the "store" received, whether
 * or not the attempt won. Two lines for one blog mean the runtime published it twice (the page shows only one).
 */
async function logAttempt(storeDir: string, call: PublishCall): Promise<void> {
  const line = { blogId: call.blogId, instanceId: call.instanceId, pid: process.pid, at: new Date().toISOString() };
  await appendFile(`${storeDir}/publish.attempts.log`, `${JSON.stringify(line)}\n`, 'utf8');
}

/** The `<title>` of a page we wrote (already escaped there), for the index. */
async function titleOf(file: string): Promise<string> {
  const html = await readFile(file, 'utf8');
  return /<title>([^<]*)<\/title>/.exec(html)?.[1] ?? '';
}

/** Rebuilds the store's index from the pages on disk, newest first, so it can never drift from them. */
async function writeIndex(storeDir: string): Promise<void> {
  const names = (await readdir(`${storeDir}/posts`)).filter((n) => /^[A-Za-z0-9_-]{1,64}\.html$/.test(n));
  const pages = await Promise.all(
    names.map(async (name) => {
      const file = `${storeDir}/posts/${name}`;
      return { name, title: await titleOf(file), mtime: (await stat(file)).mtimeMs };
    }),
  );
  pages.sort((a, b) => b.mtime - a.mtime || a.name.localeCompare(b.name));
  const items = pages.map((p) => `<li><a href="posts/${escapeHtml(p.name)}">${p.title || escapeHtml(p.name)}</a></li>`);
  await writeFileAtomic(
    `${storeDir}/index.html`,
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Posts</title><style>${STYLE}</style></head>
<body><h1>Posts</h1><ul>\n${items.join('\n')}\n</ul></body></html>\n`,
  );
}

/** A publisher with no network: one standalone HTML page per blog, at most once, plus an index and a log. */
export function createFilePublisher(opts: FilePublisherOptions): Publisher {
  // Index rebuilds of one store run one after another, so a slower, older rebuild cannot overwrite a newer one.
  const indexQueues = new Map<string, Promise<void>>();
  const queueIndex = (storeDir: string): Promise<void> => {
    const next = (indexQueues.get(storeDir) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => writeIndex(storeDir));
    indexQueues.set(storeDir, next);
    return next;
  };

  return {
    name: 'files',
    async publish(call): Promise<PublishedPost> {
      assertNotAborted(call.signal);
      assertId('blogId', call.blogId);
      // Pages live in posts/ so that no blogId (not even "index") can collide with the store's listing.
      const page = storePath(opts.dataDir, call.instanceId, 'posts', `${call.blogId}.html`);
      const storeDir = storePath(opts.dataDir, call.instanceId);
      const post = { id: call.blogId, url: pathToFileURL(page).href };
      // Look before you create: after a crash or a lost response, the page is the proof it was published.
      if (!(await exists(page))) {
        await mkdir(`${storeDir}/posts`, { recursive: true });
        const attempt = () => logAttempt(storeDir, call);
        if (await createExclusive(page, renderPage(call), attempt)) await logPublish(storeDir, post.id, call);
      }
      // Also on a repeat, so an index a crash left behind catches up with the pages.
      await queueIndex(storeDir);
      return post;
    },
  };
}
