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
import {
  admissionInput,
  initialContext,
  stageInput,
  type AdmissionInput,
  type BlogContext,
  type BlogEvent,
  type BlogInput,
  type BlogRejection,
  type StageInput,
} from './blog.context';
import {
  backingOff,
  canRetry,
  failedContext,
  resumingFailed,
  selectionRejected,
  selectionTimedOut,
  stageFailureOf,
} from './blog.failure';
import { addUsage } from './blog.types';
import type { Article, HeaderImage, Idea, PublishedPost, Stage, StageOutput, Usage, WorkingStage } from './blog.types';

export type { AdmissionInput, BlogContext, BlogEvent, BlogInput, BlogRejection, StageInput } from './blog.context';
export { admissionInput } from './blog.context';

/** Bumped whenever a change could make older snapshots restore wrongly; see `blog.migrations.ts`. */
export const BLOG_MACHINE_VERSION = 2;

const placeholder = <TOut, TIn>() =>
  fromPromise<TOut, TIn>(() => Promise.reject(new Error('actor not provided: use machine.provide')));

/** The stage failure an `onError` event carries. */
const failureIn = (event: unknown) => stageFailureOf((event as { error?: unknown }).error);

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
    admission: placeholder<void, AdmissionInput>(),
    ideas: placeholder<StageOutput<Idea[]>, StageInput>(),
    article: placeholder<StageOutput<Article>, StageInput>(),
    image: placeholder<StageOutput<HeaderImage>, StageInput>(),
    publish: placeholder<StageOutput<PublishedPost>, StageInput>(),
    wait: placeholder<void, { until: number }>(),
  },
  guards: {
    hasIdea: ({ context }) => context.request.idea !== undefined,
    canRetry: ({ context, event }) => canRetry(context, failureIn(event)),
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
    scheduleRetry: assign(({ context, event }) => backingOff(context, failureIn(event))),
    /** Adds what a finished attempt spent to the blog's total. */
    countUsage: assign({
      usage: ({ context, event }) => addUsage(context.usage, (event as { output?: { usage?: Usage } }).output?.usage),
    }),
    fail: assign(({ context, event }, stage: Stage) => failedContext(context, failureIn(event), stage)),
    resetAttempts: assign({ attempts: 0, lastError: undefined, retryAt: undefined }),
    clearError: assign({ error: undefined, attempts: 0, lastError: undefined, retryAt: undefined }),
    /** A RETRY of a working stage: back to PENDING, to resume the stage that failed once admitted. */
    resumeFailed: assign(({ context }) => resumingFailed(context)),
    admitted: assign({ resumes: undefined }),
    rejectSelection: emit(({ context, event }) =>
      selectionRejected(context, (event as { ideaIndex?: unknown }).ideaIndex),
    ),
  },
}).createMachine({
  id: 'blog',
  context: ({ input }) => initialContext(input),
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
          actions: assign(({ context }) => ({ error: selectionTimedOut(context) })),
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
