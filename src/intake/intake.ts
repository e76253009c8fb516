/**
 * Command intake: the one path every command takes, from NATS or HTTP. It validates the body, authorizes by
 * store, checks the blog's status, applies the command through the supervisor, and resolves once the effect
 * is committed (so a caller may acknowledge). Errors are `CommandError`s with the contract's codes.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { NO_USAGE, type BlogSettings } from '../../machines/blog.types';
import { viewOfRow, type BlogView } from '../runtime/blog.view';
import { LIVE_STATUSES, type BlogRepo } from '../db/blog.repo';
import { CommandError } from '../errors';
import { currentTraceparent, inCommandSpan } from '../telemetry/spans';
import type { LiveBlog, Supervisor } from '../runtime/supervisor';
import type { WaitReason } from '../runtime/store.budget';
import { encodeCursor, listSchema } from './list.schema';
import {
  blogRefSchema,
  createSchema,
  describeIssues,
  selectSchema,
  type CommandName,
  type CreateCommand,
} from './command.schema';

/** Statuses in which a blog's next provider call is a text one (held back by its store's daily budget). */
const TEXT_NEXT: readonly string[] = ['PENDING', 'GENERATING_IDEAS', 'GENERATING_CONTENT'];

/** What the intake needs. */
export interface IntakeDeps {
  supervisor: Supervisor;
  repo: BlogRepo;
  settings: BlogSettings;
  /**
   * True when posts go to Wix and no `WIX_DEFAULT_MEMBER_ID` is set: Wix requires a post owner, so a `create`
   * without `authorMemberId` could only fail at publishing, after everything was paid for. It is refused at once.
   */
  requireAuthorMemberId?: boolean;
  /** Why a blog of `instanceId` that would start a text stage waits, if it does (its store's daily budget). */
  whyWaiting?: (instanceId: string) => Promise<WaitReason | undefined>;
  now?: () => number;
}

/** How a transport can help: `blogIdHint` names the blog a `create` without `blogId` makes. */
export interface ApplyOptions {
  blogIdHint?: string;
  /** Set by the owner of a store when another process forwarded the command: never forward again. */
  forwarded?: boolean;
  /** The caller's W3C `traceparent` (HTTP or NATS header), continued by the command's span. */
  traceparent?: string;
}

/** The outcome of an applied command. */
export interface CommandResult {
  blog: BlogView;
  /** False when the command changed nothing (a create for an existing blogId). */
  applied: boolean;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new CommandError('INVALID_PAYLOAD', describeIssues(result.error));
  return result.data;
}

/** Creates the intake. */
export function createIntake(deps: IntakeDeps) {
  const now = deps.now ?? Date.now;

  async function view(blogId: string): Promise<BlogView> {
    const row = await deps.repo.get(blogId);
    if (!row) throw new CommandError('NOT_FOUND', `blog ${blogId} not found`);
    return viewOfRow(row);
  }

  async function loadOwned(blogId: string, instanceId: string): Promise<LiveBlog> {
    const entry = await deps.supervisor.load(blogId, instanceId);
    if (!entry) {
      // A blog pruned by retention has ended: nothing can change it any more.
      const row = await deps.repo.get(blogId);
      if (row?.prunedAt && row.instanceId === instanceId) {
        throw new CommandError('INVALID_STATE', `blog ${blogId} is ${row.status} and cannot change`);
      }
    }
    // Another store's blog answers exactly like a missing one: stores never learn of each other.
    if (!entry || entry.instanceId !== instanceId) throw new CommandError('NOT_FOUND', `blog ${blogId} not found`);
    return entry;
  }

  async function create(body: unknown, opts: ApplyOptions): Promise<CommandResult> {
    const c: CreateCommand = parse(createSchema, body);
    if (deps.requireAuthorMemberId && c.authorMemberId === undefined) {
      throw new CommandError(
        'INVALID_PAYLOAD',
        'authorMemberId: required, because posts are published to Wix, which needs a post owner, and WIX_DEFAULT_MEMBER_ID is not set',
      );
    }
    const blogId = c.blogId ?? opts.blogIdHint ?? randomUUID();
    const request = {
      keywords: c.keywords ?? [],
      ...(c.topic !== undefined ? { topic: c.topic } : {}),
      ...(c.idea ? { idea: { title: c.idea.title, summary: c.idea.summary ?? '' } } : {}),
      ...(c.language !== undefined ? { language: c.language } : {}),
      ...(c.tone !== undefined ? { tone: c.tone } : {}),
      ...(c.authorMemberId !== undefined ? { authorMemberId: c.authorMemberId } : {}),
      ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
    };
    // Insert first (it does nothing when the id exists), so a new blog costs one round trip.
    const { created, createdAt } = await deps.supervisor.create({
      blogId,
      instanceId: c.instanceId,
      request,
      settings: deps.settings,
    });
    if (created) {
      const at = createdAt.toISOString();
      const blog: BlogView = {
        blogId,
        instanceId: c.instanceId,
        status: 'PENDING',
        seq: 1,
        usage: NO_USAGE,
        createdAt: at,
        updatedAt: at,
      };
      return { blog, applied: true };
    }
    const existing = await view(blogId);
    // Another store's blog answers exactly like a missing one.
    if (existing.instanceId !== c.instanceId) throw new CommandError('NOT_FOUND', `blog ${blogId} not found`);
    // An earlier insert whose answer an outage lost landed without its actor starting: this repeat starts it.
    if (LIVE_STATUSES.includes(existing.status)) await deps.supervisor.load(blogId, c.instanceId);
    return { blog: existing, applied: false };
  }

  async function select(body: unknown): Promise<CommandResult> {
    const c = parse(selectSchema, body);
    const entry = await loadOwned(c.blogId, c.instanceId);
    if (entry.status !== 'AWAITING_SELECTION') {
      throw new CommandError('INVALID_STATE', `blog ${c.blogId} is ${entry.status}, not AWAITING_SELECTION`);
    }
    const ideas = entry.actor.getSnapshot().context.ideas ?? [];
    if (c.ideaIndex < 0 || c.ideaIndex >= ideas.length) {
      throw new CommandError('INVALID_SELECTION', `ideaIndex ${c.ideaIndex} is not between 0 and ${ideas.length - 1}`);
    }
    return {
      blog: await deps.supervisor.send(entry, { type: 'SELECT', ideaIndex: c.ideaIndex, at: now() }),
      applied: true,
    };
  }

  async function cancel(body: unknown): Promise<CommandResult> {
    const c = parse(blogRefSchema, body);
    const entry = await loadOwned(c.blogId, c.instanceId);
    if (entry.status === 'DONE' || entry.status === 'CANCELLED') {
      throw new CommandError('INVALID_STATE', `blog ${c.blogId} is ${entry.status} and cannot be cancelled`);
    }
    return { blog: await deps.supervisor.send(entry, { type: 'CANCEL', at: now() }), applied: true };
  }

  async function retry(body: unknown): Promise<CommandResult> {
    const c = parse(blogRefSchema, body);
    const entry = await loadOwned(c.blogId, c.instanceId);
    if (entry.status !== 'FAILED') {
      throw new CommandError('INVALID_STATE', `blog ${c.blogId} is ${entry.status}; only a FAILED blog can be retried`);
    }
    return { blog: await deps.supervisor.send(entry, { type: 'RETRY', at: now() }), applied: true };
  }

  const handlers: Record<CommandName, (body: unknown, opts: ApplyOptions) => Promise<CommandResult>> = {
    create,
    select,
    cancel,
    retry,
  };

  return {
    /** Applies one command; throws `CommandError` when it cannot be applied. */
    apply: (name: CommandName, body: unknown, opts: ApplyOptions = {}) =>
      inCommandSpan(name, opts.traceparent, () => {
        const traceparent = currentTraceparent(); // this command's span, when tracing is on
        return handlers[name](body, traceparent ? { ...opts, traceparent } : opts);
      }),
    /** A page of blogs, newest first; only `instanceId`'s when given (without it: every store, an operator's view). */
    async list(query: unknown): Promise<{ items: BlogView[]; nextCursor: string | null }> {
      const q = parse(listSchema, query);
      const rows = await deps.repo.list({
        ...(q.instanceId ? { instanceId: q.instanceId } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
        limit: q.limit + 1,
      });
      const items = rows.slice(0, q.limit).map(viewOfRow);
      const last = rows.length > q.limit ? rows[q.limit - 1] : undefined;
      return { items, nextCursor: last ? encodeCursor(last.createdAt, last.blogId) : null };
    },
    /** A blog as its store sees it; `NOT_FOUND` for unknown blogs and other stores' blogs. */
    async get(blogId: string, instanceId: string | undefined): Promise<BlogView> {
      const blog = await view(blogId);
      if (instanceId !== undefined && blog.instanceId !== instanceId) {
        throw new CommandError('NOT_FOUND', `blog ${blogId} not found`);
      }
      if (deps.whyWaiting && TEXT_NEXT.includes(blog.status)) {
        const waiting = await deps.whyWaiting(blog.instanceId).catch(() => undefined);
        if (waiting) return { ...blog, waiting };
      }
      return blog;
    },
  };
}

/** The intake's interface. */
export type Intake = ReturnType<typeof createIntake>;
