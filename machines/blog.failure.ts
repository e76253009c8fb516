/**
 * Stage failures in the blog machine: reading what a stage actor reported, deciding to retry, backing off, and
 * recording why the blog FAILED. Pure functions of the context; the machine's guards and actions call them.
 */
import { backoffDelay } from './backoff';
import type { BlogContext, BlogRejection } from './blog.context';
import { addUsage, type BlogFailure, type Stage, type StageFailure, type WorkingStage } from './blog.types';

/** The `StageFailure` a stage actor rejected with (it rejects with one); anything else is retryable INTERNAL. */
export function stageFailureOf(error: unknown): StageFailure {
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

/** Whether the stage runs again after `failure`: it may help, and attempts are left. */
export function canRetry(context: BlogContext, failure: StageFailure): boolean {
  return failure.retryable && context.attempts + 1 < context.settings.maxAttempts;
}

/** The context after a retryable failure: one more attempt counted, backing off until `retryAt`. */
export function backingOff(context: BlogContext, failure: StageFailure): Partial<BlogContext> {
  const attempts = context.attempts + 1;
  const delay = backoffDelay(attempts, context.settings.retryBaseMs, context.blogId, failure.retryAfterMs);
  const { usage, ...lastError } = failure;
  return { attempts, lastError, retryAt: failure.at + delay, usage: addUsage(context.usage, usage) };
}

/** The context of a blog that gave up on `stage` after `failure`. */
export function failedContext(context: BlogContext, failure: StageFailure, stage: Stage): Partial<BlogContext> {
  const error: BlogFailure = { stage, code: failure.code, message: failure.message, attempts: context.attempts + 1 };
  return {
    attempts: 0,
    lastError: undefined,
    retryAt: undefined,
    error,
    usage: addUsage(context.usage, failure.usage),
  };
}

/** Why a blog whose owner picked no idea in time is FAILED. */
export function selectionTimedOut(context: BlogContext): BlogFailure {
  return {
    stage: 'AWAITING_SELECTION',
    code: 'SELECTION_TIMEOUT',
    message: `no idea was selected within ${context.settings.selectionTimeoutMs} ms`,
    attempts: 1,
  };
}

/** A RETRY of a working stage: back to PENDING, to resume the stage that failed once admitted. */
export function resumingFailed(context: BlogContext): Partial<BlogContext> {
  return {
    resumes: context.error?.stage as WorkingStage,
    error: undefined,
    attempts: 0,
    lastError: undefined,
    retryAt: undefined,
  };
}

/** The rejection of a SELECT whose `ideaIndex` names no idea. */
export function selectionRejected(context: BlogContext, ideaIndex: unknown): BlogRejection {
  return {
    type: 'rejected',
    code: 'INVALID_SELECTION',
    message: `ideaIndex ${String(ideaIndex)} is not between 0 and ${(context.ideas?.length ?? 0) - 1}`,
  };
}
