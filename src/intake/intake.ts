/**
 * Command intake: the one path every command takes, from NATS or HTTP. It validates the body (once), has the
 * command routed to its store's shard (queued there when the store is held here, else forwarded to its owner),
 * authorizes by store, hands the event to the blog through the supervisor (the blog's machine decides whether it
 * applies: the intake keeps no copy of its rules), and resolves once the effect is committed (so a caller may
 * acknowledge). Errors are `CommandError`s with the contract's codes.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { admissionInput, type BlogContext } from '../../machines/blog.machine';
import { NO_USAGE, type BlogSettings } from '../../machines/blog.types';
import { viewOfRow, type BlogView } from '../runtime/blog.view';
import { LIVE_STATUSES, type BlogRepo, type BlogRow } from '../db/blog.port';
import { CommandError } from '../errors';
import { currentTraceparent, inCommandSpan } from '../telemetry/spans';
import type { LiveBlog, Supervisor } from '../runtime/live.blog';
import type { WaitReason } from '../runtime/store.budget';
import type { Shards } from '../runtime/store.shard';
import { encodeCursor, listSchema } from './list.schema';
import {
  blogRefSchema,
  createSchema,
  describeIssues,
  selectSchema,
  type BlogRefCommand,
  type CommandName,
  type CreateCommand,
  type SelectCommand,
} from './command.schema';

/**
 * Whether the blog's next provider call is a text one (held back by its store's daily budget): in a text stage, or
 * waiting in PENDING for an admission that leads to one (the machine's own rule; not one resuming its image or its
 * publishing).
 */
function textNext(row: BlogRow): boolean {
  if (row.status === 'GENERATING_IDEAS' || row.status === 'GENERATING_CONTENT') return true;
  if (row.status !== 'PENDING') return false;
  const context = (row.snapshot as { context?: BlogContext } | null)?.context;
  return context ? (admissionInput({ context }).text ?? true) : true;
}

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
  /**
   * Runs a command where its store is held (the shards' `route`: queued on the store's shard here, in order, or
   * `forward`ed to its owner). Without it, commands are applied here at once.
   */
  route?: Shards['route'];
  /** Applies a command at `owner`, the process holding its store (the NATS forwarder, `forward.port.ts`). */
  forward?: (owner: string, name: CommandName, body: unknown, opts: ApplyOptions) => Promise<CommandResult>;
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

  async function create(c: CreateCommand, opts: ApplyOptions): Promise<CommandResult> {
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

  // The machine decides: an event its state does not take is INVALID_STATE, a SELECT of an idea that does not exist
  // comes back as the INVALID_SELECTION it emits (`sendOrRefuse`, src/runtime/live.blog.ts).
  async function select(c: SelectCommand): Promise<CommandResult> {
    const entry = await loadOwned(c.blogId, c.instanceId);
    const event = { type: 'SELECT' as const, ideaIndex: c.ideaIndex, at: now() };
    return { blog: await deps.supervisor.send(entry, event, true), applied: true };
  }

  async function cancel(c: BlogRefCommand): Promise<CommandResult> {
    const entry = await loadOwned(c.blogId, c.instanceId);
    return { blog: await deps.supervisor.send(entry, { type: 'CANCEL', at: now() }, true), applied: true };
  }

  async function retry(c: BlogRefCommand): Promise<CommandResult> {
    const entry = await loadOwned(c.blogId, c.instanceId);
    return { blog: await deps.supervisor.send(entry, { type: 'RETRY', at: now() }, true), applied: true };
  }

  /** A command's body validated by its schema (once, here), and what applies it. */
  const command =
    <T extends { instanceId: string; blogId?: string }>(
      schema: z.ZodType<T>,
      run: (c: T, opts: ApplyOptions) => Promise<CommandResult>,
      warms = true,
    ) =>
    (body: unknown) => {
      const c = parse(schema, body);
      const { blogId, instanceId } = c;
      // A blog's actor is loaded (restored, if it left memory) before the command's turn in its store's queue: the
      // loads of commands that arrive together share one read.
      const warm = warms && blogId !== undefined ? () => loadOwned(blogId, instanceId) : undefined;
      return { instanceId, warm, run: (opts: ApplyOptions) => run(c, opts) };
    };
  const commands = {
    create: command(createSchema, create, false),
    select: command(selectSchema, select),
    cancel: command(blogRefSchema, cancel),
    retry: command(blogRefSchema, retry),
  };

  return {
    /**
     * Applies one command where its store is held (here, in its shard's order, or at the owner it is forwarded to);
     * throws `CommandError` when it cannot be applied.
     */
    apply: (name: CommandName, body: unknown, opts: ApplyOptions = {}) =>
      inCommandSpan(name, opts.traceparent, async () => {
        const traceparent = currentTraceparent(); // this command's span, when tracing is on
        const c = commands[name](body);
        const apply = () => c.run(traceparent ? { ...opts, traceparent } : opts);
        if (!deps.route) return apply();
        const to = deps.forward;
        const forward = to && ((owner: string) => to(owner, name, body, opts));
        return deps.route(c.instanceId, { apply, ...(c.warm ? { warm: c.warm } : {}) }, forward, opts.forwarded);
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
      const row = await deps.repo.get(blogId);
      if (!row || (instanceId !== undefined && row.instanceId !== instanceId)) {
        throw new CommandError('NOT_FOUND', `blog ${blogId} not found`);
      }
      const blog = viewOfRow(row);
      if (deps.whyWaiting && textNext(row)) {
        const waiting = await deps.whyWaiting(blog.instanceId).catch(() => undefined);
        if (waiting) return { ...blog, waiting };
      }
      return blog;
    },
  };
}

/** The intake's interface. */
export type Intake = ReturnType<typeof createIntake>;
