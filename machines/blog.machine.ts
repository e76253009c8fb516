/**
 * The life of one blog post, from request to published post.
 *
 * Glossary
 * - status: the top-level state; exactly the statuses of the public contract.
 * - stage: a working status that calls the outside world (ideas, content, image, publishing),
 *   plus AWAITING_SELECTION, which can fail by timing out.
 * - admission: a working slot of the blog's store (and, before a text stage, its store's daily token budget). A blog
 *   waits for one in PENDING and keeps it from stage to stage. A SELECT or RETRY that brings it back to work goes
 *   to PENDING again, with `resumes` naming the stage admission leads to: the status always says whether the blog
 *   holds a slot (`GENERATING_*`, `PUBLISHING`) or waits for one (`PENDING`).
 * - attempt: one call of a stage actor; retryable failures wait in `backoff` and try again,
 *   up to `settings.maxAttempts`, then the blog is FAILED.
 * - deadline: an absolute time (ms since epoch) kept in context. Timers are invoked `wait`
 *   actors whose input is that deadline, so they survive persistence and restore
 *   (XState does not restore `after` timers). Deadlines are computed from the `at` that stage
 *   actors and commands carry: the machine never reads a clock, so it replays deterministically.
 *
 * Pure: no I/O and no vendor names. Every side effect is a named actor the runtime provides:
 * `admission`, `ideas`, `article`, `image`, `publish`, `wait`.
 */
import { assign, emit, fromPromise, setup } from 'xstate';
import { backoffDelay } from './backoff';
import { addUsage } from './blog.types';
import type {
  Article,
  BlogFailure,
  BlogRequest,
  BlogSettings,
  HeaderImage,
  Idea,
  PublishedPost,
  Stage,
  StageFailure,
  StageOutput,
  Usage,
  WorkingStage,
} from './blog.types';

/** Bumped whenever a change could make older snapshots restore wrongly; see `blog.migrations.ts`. */
export const BLOG_MACHINE_VERSION = 2;

/** Everything the blog remembers; JSON-safe, persisted with every transition. */
export interface BlogContext {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  settings: BlogSettings;
  ideas?: Idea[];
  idea?: Idea;
  article?: Article;
  image?: HeaderImage;
  post?: PublishedPost;
  error?: BlogFailure;
  /** Failed attempts of the current stage. */
  attempts: number;
  /** The last failure of the current stage, kept while it backs off. */
  lastError?: StageFailure;
  /** End of the current backoff wait. */
  retryAt?: number;
  /** When AWAITING_SELECTION gives up. */
  selectionDeadline?: number;
  /** What the blog has spent so far, retries and repeats included; absent in snapshots from before it was kept. */
  usage?: Usage;
  /** The stage PENDING's admission leads to after a SELECT or a RETRY; absent at creation (ideas or content). */
  resumes?: WorkingStage;
}

/** What the runtime passes to create a blog. */
export interface BlogInput {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  settings: BlogSettings;
}

/** Events from outside; `at` is when the command was accepted. */
export type BlogEvent =
  { type: 'SELECT'; ideaIndex: number; at: number } | { type: 'CANCEL'; at: number } | { type: 'RETRY'; at: number };

/** Emitted when an event was understood but could not be applied. */
export interface BlogRejection {
  type: 'rejected';
  code: 'INVALID_SELECTION';
  message: string;
}

/** Input of every stage actor: the blog as it is now. */
export interface StageInput {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  idea?: Idea;
  article?: Article;
  image?: HeaderImage;
  attempt: number;
}

const placeholder = <TOut, TIn>() =>
  fromPromise<TOut, TIn>(() => Promise.reject(new Error('actor not provided: use machine.provide')));

function stageInput({ context }: { context: BlogContext }): StageInput {
  return {
    blogId: context.blogId,
    instanceId: context.instanceId,
    request: context.request,
    idea: context.idea,
    article: context.article,
    image: context.image,
    attempt: context.attempts + 1,
  };
}

/** Turns whatever a stage actor threw into a `StageFailure`; unknown failures are retryable. */
export function toStageError(error: unknown): StageFailure {
  if (error && typeof error === 'object' && 'code' in error && 'message' in error) {
    const e = error as Partial<StageFailure>;
    return {
      code: String(e.code),
      message: String(e.message),
      retryable: e.retryable !== false,
      at: typeof e.at === 'number' ? e.at : 0,
      ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
      ...(e.usage && typeof e.usage === 'object' ? { usage: addUsage(undefined, e.usage) } : {}),
    };
  }
  return { code: 'INTERNAL', message: String(error), retryable: true, at: 0 };
}

/**
 * What PENDING's admission waits for: a slot of the blog's store and, when the stage it leads to calls the text
 * provider (ideas, content), the store's daily token budget too.
 */
export const admissionInput = ({ context }: { context: BlogContext }) => ({
  blogId: context.blogId,
  instanceId: context.instanceId,
  text: context.resumes !== 'GENERATING_IMAGE' && context.resumes !== 'PUBLISHING',
});

/** PENDING's admission done: enter the stage `stage` (the blog resumes it, or starts there), slot held. */
const admittedTo = (stage: WorkingStage) => ({
  guard: { type: 'resumes' as const, params: stage },
  target: stage,
  actions: 'admitted' as const,
});

/** A retryable failure waits here until `retryAt`, then runs the stage again. */
const backoff = {
  invoke: {
    id: 'backoff',
    src: 'wait',
    input: ({ context }: { context: BlogContext }) => ({ until: context.retryAt ?? 0 }),
    onDone: 'running',
  },
} as const;

export const blogMachine = setup({
  types: {
    context: {} as BlogContext,
    input: {} as BlogInput,
    events: {} as BlogEvent,
    emitted: {} as BlogRejection,
  },
  actors: {
    admission: placeholder<void, { blogId: string; instanceId: string; text?: boolean }>(),
    ideas: placeholder<StageOutput<Idea[]>, StageInput>(),
    article: placeholder<StageOutput<Article>, StageInput>(),
    image: placeholder<StageOutput<HeaderImage>, StageInput>(),
    publish: placeholder<StageOutput<PublishedPost>, StageInput>(),
    wait: placeholder<void, { until: number }>(),
  },
  guards: {
    hasIdea: ({ context }) => context.request.idea !== undefined,
    canRetry: ({ context, event }) => {
      const error = toStageError((event as { error?: unknown }).error);
      return error.retryable && context.attempts + 1 < context.settings.maxAttempts;
    },
    validSelection: ({ context, event }) =>
      event.type === 'SELECT' &&
      Number.isInteger(event.ideaIndex) &&
      event.ideaIndex >= 0 &&
      event.ideaIndex < (context.ideas?.length ?? 0),
    failedAt: ({ context }, stage: Stage) => context.error?.stage === stage,
    resumes: ({ context }, stage: WorkingStage) => context.resumes === stage,
    failedInStage: ({ context }) => context.error !== undefined && context.error.stage !== 'AWAITING_SELECTION',
  },
  actions: {
    scheduleRetry: assign(({ context, event }) => {
      const error = toStageError((event as { error?: unknown }).error);
      const attempts = context.attempts + 1;
      const seed = `${context.blogId}`;
      const delay = backoffDelay(attempts, context.settings.retryBaseMs, seed, error.retryAfterMs);
      const { usage, ...lastError } = error;
      return { attempts, lastError, retryAt: error.at + delay, usage: addUsage(context.usage, usage) };
    }),
    /** Adds what a finished attempt spent to the blog's total. */
    countUsage: assign({
      usage: ({ context, event }) => addUsage(context.usage, (event as { output?: { usage?: Usage } }).output?.usage),
    }),
    fail: assign(({ context, event }, stage: Stage) => {
      const error = toStageError((event as { error?: unknown }).error);
      return {
        attempts: 0,
        lastError: undefined,
        retryAt: undefined,
        error: { stage, code: error.code, message: error.message, attempts: context.attempts + 1 },
        usage: addUsage(context.usage, error.usage),
      };
    }),
    resetAttempts: assign({ attempts: 0, lastError: undefined, retryAt: undefined }),
    clearError: assign({ error: undefined, attempts: 0, lastError: undefined, retryAt: undefined }),
    /** A RETRY of a working stage: back to PENDING, to resume the stage that failed once admitted. */
    resumeFailed: assign(({ context }) => ({
      resumes: context.error?.stage as WorkingStage,
      error: undefined,
      attempts: 0,
      lastError: undefined,
      retryAt: undefined,
    })),
    admitted: assign({ resumes: undefined }),
    rejectSelection: emit(({ context, event }) => ({
      type: 'rejected' as const,
      code: 'INVALID_SELECTION' as const,
      message: `ideaIndex ${String((event as { ideaIndex?: unknown }).ideaIndex)} is not between 0 and ${(context.ideas?.length ?? 0) - 1}`,
    })),
  },
}).createMachine({
  id: 'blog',
  context: ({ input }) => ({
    blogId: input.blogId,
    instanceId: input.instanceId,
    request: input.request,
    settings: input.settings,
    attempts: 0,
  }),
  initial: 'PENDING',
  on: {
    CANCEL: { target: '.CANCELLED' },
  },
  states: {
    PENDING: {
      invoke: {
        id: 'admission',
        src: 'admission',
        input: admissionInput,
        onDone: [
          admittedTo('GENERATING_IDEAS'),
          admittedTo('GENERATING_CONTENT'),
          admittedTo('GENERATING_IMAGE'),
          admittedTo('PUBLISHING'),
          { guard: 'hasIdea', target: 'GENERATING_CONTENT' },
          { target: 'GENERATING_IDEAS' },
        ],
      },
    },
    GENERATING_IDEAS: {
      initial: 'running',
      entry: 'resetAttempts',
      states: {
        running: {
          invoke: {
            id: 'ideas',
            src: 'ideas',
            input: stageInput,
            onDone: {
              target: '#blog.AWAITING_SELECTION',
              actions: [
                'countUsage',
                assign(({ event, context }) => ({
                  ideas: event.output.result,
                  selectionDeadline: event.output.at + context.settings.selectionTimeoutMs,
                })),
              ],
            },
            onError: [
              { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
              { target: '#blog.FAILED', actions: { type: 'fail', params: 'GENERATING_IDEAS' } },
            ],
          },
        },
        backoff,
      },
    },
    AWAITING_SELECTION: {
      entry: 'resetAttempts',
      invoke: {
        id: 'selectionTimeout',
        src: 'wait',
        input: ({ context }) => ({ until: context.selectionDeadline ?? 0 }),
        onDone: {
          target: 'FAILED',
          actions: assign(({ context }) => ({
            error: {
              stage: 'AWAITING_SELECTION' as const,
              code: 'SELECTION_TIMEOUT',
              message: `no idea was selected within ${context.settings.selectionTimeoutMs} ms`,
              attempts: 1,
            },
          })),
        },
      },
      on: {
        SELECT: [
          {
            guard: 'validSelection',
            target: 'PENDING',
            actions: assign(({ context, event }) => ({
              idea: context.ideas?.[event.ideaIndex],
              resumes: 'GENERATING_CONTENT' as const,
            })),
          },
          { actions: 'rejectSelection' },
        ],
      },
    },
    GENERATING_CONTENT: {
      initial: 'running',
      entry: ['resetAttempts', assign(({ context }) => ({ idea: context.idea ?? context.request.idea }))],
      states: {
        running: {
          invoke: {
            id: 'article',
            src: 'article',
            input: stageInput,
            onDone: {
              target: '#blog.GENERATING_IMAGE',
              actions: ['countUsage', assign({ article: ({ event }) => event.output.result })],
            },
            onError: [
              { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
              { target: '#blog.FAILED', actions: { type: 'fail', params: 'GENERATING_CONTENT' } },
            ],
          },
        },
        backoff,
      },
    },
    GENERATING_IMAGE: {
      initial: 'running',
      entry: 'resetAttempts',
      states: {
        running: {
          invoke: {
            id: 'image',
            src: 'image',
            input: stageInput,
            onDone: {
              target: '#blog.PUBLISHING',
              actions: ['countUsage', assign({ image: ({ event }) => event.output.result })],
            },
            onError: [
              { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
              { target: '#blog.FAILED', actions: { type: 'fail', params: 'GENERATING_IMAGE' } },
            ],
          },
        },
        backoff,
      },
    },
    PUBLISHING: {
      initial: 'running',
      entry: 'resetAttempts',
      states: {
        running: {
          invoke: {
            id: 'publish',
            src: 'publish',
            input: stageInput,
            onDone: {
              target: '#blog.DONE',
              actions: ['countUsage', assign({ post: ({ event }) => event.output.result })],
            },
            onError: [
              { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
              { target: '#blog.FAILED', actions: { type: 'fail', params: 'PUBLISHING' } },
            ],
          },
        },
        backoff,
      },
    },
    FAILED: {
      on: {
        RETRY: [
          // A selection that timed out waits for the owner again: no slot needed.
          {
            guard: { type: 'failedAt', params: 'AWAITING_SELECTION' },
            target: 'AWAITING_SELECTION',
            actions: [
              'clearError',
              assign(({ context, event }) => ({ selectionDeadline: event.at + context.settings.selectionTimeoutMs })),
            ],
          },
          // A working stage waits for a slot of its store in PENDING, then resumes where it failed.
          { guard: 'failedInStage', target: 'PENDING', actions: 'resumeFailed' },
        ],
      },
    },
    DONE: { type: 'final', entry: 'resetAttempts' },
    CANCELLED: { type: 'final' },
  },
});

/** The blog machine's type, for the runtime and tests. */
export type BlogMachine = typeof blogMachine;
