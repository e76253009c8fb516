/** What the outside world sees of a blog: derived from its machine snapshot, never stored twice by hand. */
import type { BlogContext } from '../../machines/blog.machine';
import {
  NO_USAGE,
  type BlogStatus,
  type Idea,
  type PublishedPost,
  type BlogFailure,
  type Usage,
} from '../../machines/blog.types';
import type { BlogRow } from '../db/blog.port';

/** The public fields a snapshot contributes to the API and to events. */
export interface BlogPublicFields {
  ideas?: Idea[];
  idea?: Idea;
  post?: PublishedPost;
  error?: BlogFailure;
  /** What the blog has spent so far (tokens as reported, images created), retries and repeats included. */
  usage?: Usage;
}

/** A blog as the HTTP API returns it. */
export interface BlogView extends BlogPublicFields {
  blogId: string;
  instanceId: string;
  status: BlogStatus;
  seq: number;
  createdAt: string;
  updatedAt: string;
  /** Why the blog waits, when something other than a slot holds it back (its store's daily budget). */
  waiting?: { reason: string; message: string; until: string };
}

/** The status of a machine state value: its top-level key. */
export function statusOf(value: unknown): BlogStatus {
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as BlogStatus;
}

/** Public fields of a blog in `status`, as the contract says which come with which status. */
export function publicFields(status: BlogStatus, context: BlogContext): BlogPublicFields {
  // Written field by field rather than with conditional spreads: this runs on every status change.
  const fields: BlogPublicFields = {};
  if (context.ideas) fields.ideas = context.ideas;
  // The chosen idea: from GENERATING_CONTENT on, and in the PENDING that waits for a slot after a select or retry.
  if (context.idea) fields.idea = context.idea;
  if (status === 'DONE' && context.post) fields.post = context.post;
  if (status === 'FAILED' && context.error) fields.error = context.error;
  fields.usage = context.usage ?? NO_USAGE;
  return fields;
}

/** The payload of `<prefix>.events.<instanceId>.<blogId>` for one status change. */
export function eventPayload(
  context: BlogContext,
  status: BlogStatus,
  previousStatus: BlogStatus | null,
  seq: number,
  at: Date,
): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    blogId: context.blogId,
    instanceId: context.instanceId,
    status,
    previousStatus,
    seq,
    at: at.toISOString(),
  };
  // The contract's fields per status, as the API shows them; an event carries the ideas only when they are new.
  const fields = publicFields(status, context);
  if (status === 'AWAITING_SELECTION' && fields.ideas) payload.ideas = fields.ideas;
  if (fields.idea) payload.idea = fields.idea;
  if (fields.post) payload.post = fields.post;
  if (fields.error) payload.error = fields.error;
  if (status === 'DONE' || status === 'FAILED') payload.usage = fields.usage;
  return payload;
}

/** When the blog's next durable timer fires, if it waits on one. */
export function wakeAtOf(status: BlogStatus, value: unknown, context: BlogContext): Date | null {
  if (status === 'AWAITING_SELECTION' && context.selectionDeadline) return new Date(context.selectionDeadline);
  const sub = typeof value === 'object' && value ? (value as Record<string, unknown>)[status] : undefined;
  if (sub === 'backoff' && context.retryAt) return new Date(context.retryAt);
  return null;
}

/** The API's view of a stored row. */
export function viewOfRow(row: BlogRow): BlogView {
  return {
    blogId: row.blogId,
    instanceId: row.instanceId,
    status: row.status as BlogStatus,
    seq: row.seq,
    // Rows written before spend was kept show nothing spent.
    usage: NO_USAGE,
    ...(row.view as BlogPublicFields),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
