/** Checks shared by the multi-process tests: every blog finished, published once, events without gaps. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

/** Counts of real publishes per blog, from every store's `publish.log` under `dataDir`. */
export async function publishCounts(dataDir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const root = path.join(dataDir, 'published');
  const stores = await readdir(root).catch(() => [] as string[]);
  for (const store of stores) {
    const log = await readFile(path.join(root, store, 'publish.log'), 'utf8').catch(() => '');
    for (const line of log.split('\n').filter(Boolean)) {
      const { blogId } = JSON.parse(line) as { blogId: string };
      counts.set(blogId, (counts.get(blogId) ?? 0) + 1);
    }
  }
  return counts;
}

/** Blogs with a published page on disk. */
export async function publishedPages(dataDir: string): Promise<Set<string>> {
  const pages = new Set<string>();
  const root = path.join(dataDir, 'published');
  for (const store of await readdir(root).catch(() => [] as string[])) {
    const files = await readdir(path.join(root, store, 'posts')).catch(() => [] as string[]);
    for (const f of files) if (f.endsWith('.html')) pages.add(f.slice(0, -5));
  }
  return pages;
}

/** Statuses of every blog in the database. */
export async function statuses(client: pg.Client): Promise<Map<string, string>> {
  const { rows } = await client.query<{ blog_id: string; status: string }>('select blog_id, status from blogs');
  return new Map(rows.map((r) => [r.blog_id, r.status]));
}

/** Blogs whose outbox seqs are not exactly 1..seq (a gap, a duplicate, or a missing tail). */
export async function seqGaps(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ blog_id: string }>(`
    select b.blog_id from blogs b
    left join (select blog_id, count(distinct seq) as n, min(seq) as lo, max(seq) as hi from outbox group by blog_id) o
      on o.blog_id = b.blog_id
    where o.n is distinct from b.seq or o.lo is distinct from 1 or o.hi is distinct from b.seq`);
  return rows.map((r) => r.blog_id);
}

/** Summary of what is wrong, or an empty list when every blog is DONE, published once, without gaps. */
export async function fleetProblems(client: pg.Client, dataDir: string, expected: number): Promise<string[]> {
  const problems: string[] = [];
  const all = await statuses(client);
  if (all.size !== expected) problems.push(`${all.size} blogs in the database, expected ${expected}`);
  const notDone = [...all].filter(([, s]) => s !== 'DONE');
  if (notDone.length)
    problems.push(
      `${notDone.length} not DONE: ${notDone
        .slice(0, 5)
        .map(([b, s]) => `${b}=${s}`)
        .join(' ')}`,
    );
  const counts = await publishCounts(dataDir);
  const twice = [...counts].filter(([, n]) => n > 1);
  if (twice.length) problems.push(`published more than once: ${twice.map(([b, n]) => `${b}×${n}`).join(' ')}`);
  // A kill between writing the page and its log line can lose the line, never the page: check pages here.
  const pages = await publishedPages(dataDir);
  const never = [...all.keys()].filter((b) => !pages.has(b));
  if (never.length) problems.push(`${never.length} without a published page: ${never.slice(0, 5).join(' ')}`);
  const gaps = await seqGaps(client);
  if (gaps.length) problems.push(`${gaps.length} blogs with event seq gaps: ${gaps.slice(0, 5).join(' ')}`);
  return problems;
}
