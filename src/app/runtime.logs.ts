/** The runtime's log lines about blogs: one per status change, one per failed stage call, one per outage wait. */
import type { StageFailure } from '../../machines/blog.types';
import type { Logger } from '../logger';
import { STATUS_OF_STAGE } from '../runtime/fleet.registry';
import type { StatusChange } from '../runtime/supervisor';

/** Who a stage call belongs to. */
type Owner = { blogId: string; instanceId: string; attempt?: number };

/**
 * Logs a status change: ids, statuses and counters only, so nothing there can be a secret. Redaction (which copies
 * the logged object) made each of these lines about 7x dearer; the child logger made here skips it.
 */
export function statusChangeLogger(log: Logger): (change: StatusChange) => void {
  const statusLog = log.child({}, { redact: [] });
  return (change) => {
    const { error, attempts } = change.context;
    statusLog.info(
      {
        blogId: change.blogId,
        instanceId: change.instanceId,
        status: change.status,
        seq: change.seq,
        stage: change.status === 'FAILED' ? error?.stage : change.status,
        attempt: change.status === 'FAILED' ? error?.attempts : attempts + 1,
        ...(change.status === 'FAILED' && error ? { code: error.code } : {}),
      },
      `blog ${change.previousStatus ?? 'NEW'} -> ${change.status}`,
    );
  };
}

/** Logs a stage call that failed (the machine then retries it or fails the blog). */
export function logStageFailure(log: Logger, stage: string, failure: StageFailure, owner?: Owner): void {
  log.warn(
    { ...owner, status: STATUS_OF_STAGE[stage], stage, code: failure.code, retryable: failure.retryable },
    `stage ${stage} failed: ${failure.message}`,
  );
}

/** Logs a stage that hit an outage of a service Inkwell runs on and runs the same attempt again. */
export function logInfrastructureWait(log: Logger, stage: string, err: unknown, owner: Owner): void {
  log.warn(
    { ...owner, stage, err: err instanceof Error ? err.message : String(err) },
    `stage ${stage} hit an outage; the same attempt runs again once it waited (no attempt spent)`,
  );
}
