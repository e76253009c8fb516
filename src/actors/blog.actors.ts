/**
 * The stage actors the blog machine names, built from the ports: thin wrappers that call a provider,
 * stamp the time, and turn any failure into a plain `StageFailure` the machine can decide on.
 */
import { fromPromise } from 'xstate';
import type { StageInput } from '../../machines/blog.machine';
import {
  addUsage,
  type Article,
  type HeaderImage,
  type Idea,
  type PublishedPost,
  type StageFailure,
  type StageOutput,
  type Usage,
} from '../../machines/blog.types';
import { InkwellError, isConnectionFailure, StageFailureError } from '../errors';
import { fromDeadline } from './deadline.actor';
import { sleep } from '../providers/offline/seed';
import { STATUS_OF_STAGE } from '../runtime/fleet.registry';
import { inStageSpan } from '../telemetry/spans';
import type { ImageMaker } from '../providers/image.port';
import type { Publisher } from '../providers/publisher.port';
import type { TextWriter } from '../providers/text.port';
import type { StoreSlots } from '../runtime/store.shard';

/** What the stage actors need. */
export interface BlogActorDeps {
  writer: TextWriter;
  images: ImageMaker;
  publisher: Publisher;
  slots: StoreSlots;
  /**
   * Resolves once the blog's transitions so far are committed; rejects when they were refused (another writer, or
   * this process lost the store's lease). Publishing waits for it: the one side effect that must never come from a
   * process whose transition into PUBLISHING was fenced off.
   */
  committed?: (blogId: string, instanceId: string) => Promise<void>;
  /** The stores' daily token budgets: a text stage (and the admission before one) waits while its store is over. */
  budget?: { wait(instanceId: string, signal?: AbortSignal): Promise<void> };
  now?: () => number;
  /** Called around every provider call, for metrics and for a graceful drain. */
  onCall?: (
    stage: string,
    phase: 'start' | 'ok' | 'error',
    failure?: StageFailure,
    owner?: { blogId: string; instanceId: string; attempt: number },
  ) => void;
  /** Called when a stage hit an outage of PostgreSQL, NATS or Redis and runs its attempt again once it waited. */
  onInfrastructureWait?: (stage: string, error: unknown, owner: { blogId: string; instanceId: string }) => void;
  /** Called with what each provider answer cost, as soon as the provider reports it (metrics, the store's spend). */
  onUsage?: (stage: string, owner: { blogId: string; instanceId: string }, usage: Partial<Usage>) => void;
}

/** Waits before running an attempt again after an outage: 250 ms doubling to 5 s. */
const outageDelay = (tries: number) => Math.min(5_000, 250 * 2 ** Math.min(tries - 1, 5));

/**
 * The `StageFailure` of anything a provider threw: a `StageFailureError` (or another `InkwellError`) keeps its code;
 * anything else is a retryable INTERNAL.
 */
export function toStageFailure(error: unknown, at: number): StageFailure {
  if (error instanceof StageFailureError) {
    return {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      at,
      ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
    };
  }
  if (error instanceof InkwellError)
    return { code: error.code, message: error.message, retryable: error.retryable, at };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message, retryable: true, at };
}

function missing(what: string): never {
  throw new StageFailureError('MISSING_INPUT', `${what} is missing: the blog cannot continue this stage`, false);
}

/** Builds the actors to pass to `blogMachine.provide({ actors })`. */
export function createBlogActors(deps: BlogActorDeps) {
  const now = deps.now ?? Date.now;

  /**
   * Runs the attempt; when it failed only because a service Inkwell runs on is unreachable (never a provider's
   * answer), waits and runs the same attempt again: the machine never sees an outage, no attempt is spent. Stages
   * are safe to repeat (provider refs), and the refs calls wait for the database themselves, so this is the
   * backstop for whatever else an outage reaches.
   */
  async function runThroughOutages<T>(
    name: string,
    input: StageInput,
    signal: AbortSignal,
    run: () => Promise<T>,
  ): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await run();
      } catch (error) {
        if (signal.aborted || !isConnectionFailure(error)) throw error;
        deps.onInfrastructureWait?.(name, error, { blogId: input.blogId, instanceId: input.instanceId });
        await sleep(outageDelay(tries), signal);
      }
    }
  }

  function stage<T>(
    name: string,
    run: (input: StageInput, signal: AbortSignal, onUsage: (u: Partial<Usage>) => void) => Promise<T>,
  ) {
    return fromPromise<StageOutput<T>, StageInput>(async ({ input, signal }) => {
      const owner = { blogId: input.blogId, instanceId: input.instanceId, attempt: input.attempt };
      deps.onCall?.(name, 'start', undefined, owner);
      // What this attempt spent, also when it fails after the provider answered (and charged).
      let spent: Usage | undefined;
      const onUsage = (usage: Partial<Usage>) => {
        spent = addUsage(spent, usage);
        deps.onUsage?.(name, owner, usage);
      };
      try {
        const result = await inStageSpan(
          { ...owner, stage: STATUS_OF_STAGE[name] ?? name, traceparent: input.request.traceparent },
          () => runThroughOutages(name, input, signal, () => run(input, signal, onUsage)),
        );
        deps.onCall?.(name, 'ok', undefined, owner);
        return { result, at: now(), ...(spent ? { usage: spent } : {}) };
      } catch (error) {
        const failure: StageFailure = { ...toStageFailure(error, now()), ...(spent ? { usage: spent } : {}) };
        deps.onCall?.(name, 'error', failure, owner);
        // An Error for the stack trace, carrying the plain fields the machine reads (it keeps only those).
        throw Object.assign(new Error(failure.message), failure);
      }
    });
  }

  const call = (input: StageInput, signal: AbortSignal, onUsage: (u: Partial<Usage>) => void) => ({
    blogId: input.blogId,
    instanceId: input.instanceId,
    request: input.request,
    attempt: input.attempt,
    signal,
    onUsage,
  });

  return {
    admission: fromPromise<void, { blogId: string; instanceId: string; text?: boolean }>(async ({ input, signal }) => {
      if (input.text) await deps.budget?.wait(input.instanceId, signal);
      return deps.slots.acquire(input.instanceId, input.blogId, signal);
    }),
    ideas: stage<Idea[]>('ideas', async (input, signal, onUsage) => {
      await deps.budget?.wait(input.instanceId, signal);
      return deps.writer.generateIdeas(call(input, signal, onUsage));
    }),
    article: stage<Article>('article', async (input, signal, onUsage) => {
      await deps.budget?.wait(input.instanceId, signal);
      return deps.writer.generateArticle({
        ...call(input, signal, onUsage),
        idea: input.idea ?? missing('the chosen idea'),
      });
    }),
    image: stage<HeaderImage>('image', (input, signal, onUsage) =>
      deps.images.createHeaderImage({
        ...call(input, signal, onUsage),
        article: input.article ?? missing('the article'),
      }),
    ),
    publish: stage<PublishedPost>('publish', async (input, signal, onUsage) => {
      await deps.committed?.(input.blogId, input.instanceId);
      return deps.publisher.publish({
        ...call(input, signal, onUsage),
        article: input.article ?? missing('the article'),
        ...(input.image ? { image: input.image } : {}),
      });
    }),
    wait: fromDeadline(now),
  };
}
