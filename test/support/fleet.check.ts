/**
 * Checks shared by the multi-process tests: every blog finished, published once (one publish attempt at the
 * provider boundary), and its events, as published, run 1..n with one status per seq and only legal changes.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import type { BlogStatus } from '../../machines/blog.types';

/** Lines per blog of one log file (`publish.log`, `publish.attempts.log`) of every store under `dataDir`. */
async function countLines(dataDir: string, file: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const root = path.join(dataDir, 'published');
  const stores = await readdir(root).catch(() => [] as string[]);
  for (const store of stores) {
    const log = await readFile(path.join(root, store, file), 'utf8').catch(() => '');
    for (const line of log.split('\n').filter(Boolean)) {
      const { blogId } = JSON.parse(line) as { blogId: string };
      counts.set(blogId, (counts.get(blogId) ?? 0) + 1);
    }
  }
  return counts;
}

/** Counts of real publishes per blog (the exclusive create won), from every store's `publish.log`. */
export const publishCounts = (dataDir: string) => countLines(dataDir, 'publish.log');

/**
 * Publish ATTEMPTS per blog at the provider boundary: every time the file publisher was asked to publish a blog
 * it had no page for, won or lost. A runtime that publishes a blog twice shows two here, one in `publish.log`.
 */
export const publishAttempts = (dataDir: string) => countLines(dataDir, 'publish.attempts.log');

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
  const attempts = await publishAttempts(dataDir);
  const notOnce = [...all.keys()].filter((b) => attempts.get(b) !== 1);
  if (notOnce.length)
    problems.push(
      `publish attempted other than once: ${notOnce
        .slice(0, 5)
        .map((b) => `${b}×${attempts.get(b) ?? 0}`)
        .join(' ')}`,
    );
  // A kill between writing the page and its log line can lose the line, never the page: check pages here.
  const pages = await publishedPages(dataDir);
  const never = [...all.keys()].filter((b) => !pages.has(b));
  if (never.length) problems.push(`${never.length} without a published page: ${never.slice(0, 5).join(' ')}`);
  const gaps = await seqGaps(client);
  if (gaps.length) problems.push(`${gaps.length} blogs with event seq gaps: ${gaps.slice(0, 5).join(' ')}`);
  return problems;
}

/**
 * The status changes the contract allows (the machine's own are checked against this in graph.checks.test.ts):
 * forward through the stages, to FAILED from a stage or a selection timeout, to CANCELLED from anything not final.
 * A blog that waits for a slot is PENDING, so a `select` is `AWAITING_SELECTION → PENDING` and a `retry` is
 * `FAILED → PENDING` (or `FAILED → AWAITING_SELECTION` after a selection timeout: no slot is needed to wait for the
 * owner), then PENDING → the stage it resumes (any working stage).
 */
export const LEGAL_CHANGES: Record<BlogStatus, readonly BlogStatus[]> = {
  PENDING: ['GENERATING_IDEAS', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'CANCELLED'],
  GENERATING_IDEAS: ['AWAITING_SELECTION', 'FAILED', 'CANCELLED'],
  AWAITING_SELECTION: ['PENDING', 'FAILED', 'CANCELLED'],
  GENERATING_CONTENT: ['GENERATING_IMAGE', 'FAILED', 'CANCELLED'],
  GENERATING_IMAGE: ['PUBLISHING', 'FAILED', 'CANCELLED'],
  PUBLISHING: ['DONE', 'FAILED', 'CANCELLED'],
  FAILED: ['PENDING', 'AWAITING_SELECTION', 'CANCELLED'],
  DONE: [],
  CANCELLED: [],
};

/** The fields of a status event the checks read. */
export interface StatusEvent {
  blogId: string;
  seq: number;
  status: BlogStatus;
  previousStatus: BlogStatus | null;
}

/** Every message of a JetStream stream, oldest first (an ordered consumer read to the stream's last seq). */
export async function streamEvents(nc: NatsConnection, stream: string): Promise<StatusEvent[]> {
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const out: StatusEvent[] = [];
  if (info.state.messages === 0) return out;
  const messages = await (await jetstream(nc).consumers.get(stream)).consume();
  try {
    for await (const m of messages) {
      out.push(m.json<StatusEvent>());
      if (m.seq >= info.state.last_seq) break;
    }
  } finally {
    await messages.close();
  }
  return out;
}

/** Each blog's `seq` in the database: how many status changes it made. */
export async function blogSeqs(client: pg.Client): Promise<Map<string, number>> {
  const { rows } = await client.query<{ blog_id: string; seq: number }>('select blog_id, seq from blogs');
  return new Map(rows.map((r) => [r.blog_id, r.seq]));
}

/**
 * What is wrong with the events as published (duplicates allowed: delivery is at least once), per blog of
 * `seqs`: seq must run 1..n with no gap and no missing tail, no seq may carry two different changes, seq 1 is
 * `null → PENDING`, each change starts where the one before ended and is in LEGAL_CHANGES.
 */
export function eventProblems(events: StatusEvent[], seqs: Map<string, number>): string[] {
  const byBlog = new Map<string, Map<number, Set<string>>>();
  for (const e of events) {
    const bySeq = byBlog.get(e.blogId) ?? new Map<number, Set<string>>();
    byBlog.set(e.blogId, bySeq);
    const changes = bySeq.get(e.seq) ?? new Set<string>();
    bySeq.set(e.seq, changes);
    changes.add(JSON.stringify([e.previousStatus, e.status]));
  }
  const problems: string[] = [];
  for (const [blogId, n] of seqs) {
    const bySeq = byBlog.get(blogId) ?? new Map<number, Set<string>>();
    const seen = [...bySeq.keys()].sort((a, b) => a - b);
    const wanted = Array.from({ length: n }, (_, i) => i + 1);
    if (JSON.stringify(seen) !== JSON.stringify(wanted))
      problems.push(`${blogId}: seqs ${seen.join(',') || 'none'} published, expected 1..${n}`);
    let before: string | null = null;
    for (const seq of seen) {
      const changes = [...bySeq.get(seq)!].map((c) => JSON.parse(c) as [BlogStatus | null, BlogStatus]);
      if (changes.length > 1) problems.push(`${blogId}: seq ${seq} published as ${changes.length} different changes`);
      const [from, to] = changes[0]!;
      if (seq === 1 && (from !== null || to !== 'PENDING')) problems.push(`${blogId}: seq 1 is ${from} → ${to}`);
      if (seq > 1 && from !== before)
        problems.push(`${blogId}: seq ${seq} starts at ${from}, seq ${seq - 1} ended at ${before}`);
      if (seq > 1 && (from === null || !LEGAL_CHANGES[from].includes(to)))
        problems.push(`${blogId}: seq ${seq} is an illegal change ${from} → ${to}`);
      before = to;
    }
  }
  for (const blogId of byBlog.keys()) if (!seqs.has(blogId)) problems.push(`${blogId}: events for an unknown blog`);
  return problems;
}

/**
 * `eventProblems` once the events stream has caught up with the database (the relay publishes after the commit):
 * polls until there are none, and returns the last ones found after `timeoutMs`.
 */
export async function settledEventProblems(
  nc: NatsConnection,
  stream: string,
  client: pg.Client,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems = eventProblems(await streamEvents(nc, stream), await blogSeqs(client));
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await new Promise((r) => setTimeout(r, 200));
  }
}
