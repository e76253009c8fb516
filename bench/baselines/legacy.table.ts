/**
 * The old system's storage, shared by both baselines: one simple table `legacy_blogs(id, store, status,
 * stage_data, updated_at)` in the same database, polled for blogs needing work. A blog needs work in one of four
 * `pending_*` statuses; a topic starts in `pending_ideas` and stops in `awaiting_selection` until its owner picks.
 */
import type pg from 'pg';
import type { Article, HeaderImage } from '../../machines/blog.types';
import type { Providers } from '../../src/providers/providers';
import type { BlogSpec } from '../lib/workload';

export type LegacyStage = 'ideas' | 'content' | 'image' | 'publish';
export const PENDING_STATUS: Record<LegacyStage, string> = {
  ideas: 'pending_ideas',
  content: 'pending_content',
  image: 'pending_image',
  publish: 'pending_publish',
};
const STAGE_OF_STATUS = new Map(
  Object.entries(PENDING_STATUS).map(([stage, status]) => [status, stage as LegacyStage]),
);

/** A row as the workers read it. */
export interface LegacyRow {
  id: string;
  store: string;
  status: string;
  stage_data: {
    kind: 'topic' | 'idea';
    topic?: string;
    ideas?: unknown[];
    idea?: { title: string; summary: string };
    article?: Article;
    image?: HeaderImage;
  };
}

/** Called after a status change is committed. */
export type OnLegacyStatus = (id: string, status: string) => void;

export async function createLegacyTable(pool: pg.Pool): Promise<void> {
  await pool.query(`create table if not exists legacy_blogs (
    id text primary key, store text not null, status text not null,
    stage_data jsonb not null default '{}'::jsonb, updated_at timestamptz not null default now())`);
  await pool.query('create index if not exists legacy_blogs_status_idx on legacy_blogs (status, updated_at)');
}

export async function insertLegacyBlog(pool: pg.Pool, spec: BlogSpec): Promise<void> {
  // The id in the text lets HTTP fakes that answer after each blog's own stage time tell the blogs apart.
  const data =
    spec.kind === 'topic'
      ? { kind: 'topic', topic: `Brewing coffee [${spec.blogId}]` }
      : { kind: 'idea', idea: { title: `Cold brew at home [${spec.blogId}]`, summary: 'A slow method.' } };
  const status = spec.kind === 'topic' ? PENDING_STATUS.ideas : PENDING_STATUS.content;
  await pool.query('insert into legacy_blogs (id, store, status, stage_data) values ($1, $2, $3, $4)', [
    spec.blogId,
    spec.instanceId,
    status,
    data,
  ]);
}

/** The owner's pick: the first idea; the blog needs its article next. */
export async function selectLegacyIdea(pool: pg.Pool, id: string): Promise<void> {
  await pool.query(
    `update legacy_blogs set status = $2, updated_at = now(),
       stage_data = jsonb_set(stage_data, '{idea}', stage_data->'ideas'->0)
     where id = $1 and status = 'awaiting_selection'`,
    [id, PENDING_STATUS.content],
  );
}

/** Up to `limit` blogs in `statuses`, oldest first, at most `perStore` of any store. */
export async function fetchNeedingWork(pool: pg.Pool, statuses: string[], limit = 100, perStore = 20) {
  const { rows } = await pool.query<LegacyRow>(
    `select id, store, status, stage_data from (
       select *, row_number() over (partition by store order by updated_at) as n
       from legacy_blogs where status = any($1)) t
     where n <= $2 order by updated_at limit $3`,
    [statuses, perStore, limit],
  );
  return rows;
}

/** Runs the stage `row` waits for, then writes its next status; one provider call and one UPDATE. */
export async function advanceLegacyBlog(
  pool: pg.Pool,
  providers: Providers,
  row: LegacyRow,
  onStatus: OnLegacyStatus,
): Promise<void> {
  const stage = STAGE_OF_STATUS.get(row.status);
  if (!stage) return;
  const base = { blogId: row.id, instanceId: row.store, attempt: 1, signal: new AbortController().signal };
  const request = { keywords: [], topic: row.stage_data.topic ?? 'Brewing coffee' };
  const idea = row.stage_data.idea ?? { title: 'Cold brew at home', summary: '' };
  const article = row.stage_data.article ?? { title: idea.title, excerpt: '', markdown: '', html: '' };
  let next: string;
  let data: Record<string, unknown>;
  if (stage === 'ideas') {
    data = { ideas: await providers.writer.generateIdeas({ ...base, request }) };
    next = 'awaiting_selection';
  } else if (stage === 'content') {
    data = { article: await providers.writer.generateArticle({ ...base, request, idea }) };
    next = PENDING_STATUS.image;
  } else if (stage === 'image') {
    data = { image: await providers.images.createHeaderImage({ ...base, request, article }) };
    next = PENDING_STATUS.publish;
  } else {
    const image = row.stage_data.image;
    data = { post: await providers.publisher.publish({ ...base, request, article, ...(image ? { image } : {}) }) };
    next = 'done';
  }
  await pool.query(
    'update legacy_blogs set status = $2, stage_data = stage_data || $3::jsonb, updated_at = now() where id = $1',
    [row.id, next, JSON.stringify(data)],
  );
  onStatus(row.id, next);
}

/** Runs `rows` in sub-batches of `size`, each with Promise.all (a sub-batch waits for its slowest blog). */
export async function advanceInSubBatches(
  pool: pg.Pool,
  providers: Providers,
  rows: LegacyRow[],
  onStatus: OnLegacyStatus,
  size = 50,
): Promise<void> {
  for (let i = 0; i < rows.length; i += size) {
    await Promise.all(
      rows.slice(i, i + size).map((row) =>
        advanceLegacyBlog(pool, providers, row, onStatus).catch((err: unknown) => {
          // The old workers logged and left the row for the next poll.
          console.error(`legacy worker: ${row.id}: ${String(err)}`);
        }),
      ),
    );
  }
}
