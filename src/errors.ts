import type { StageFailure } from '../machines/blog.types';

/** Codes a command can be rejected with, over NATS and HTTP alike. */
export type CommandErrorCode = 'INVALID_PAYLOAD' | 'NOT_FOUND' | 'INVALID_STATE' | 'INVALID_SELECTION' | 'UNAUTHORIZED';

/**
 * Only what identifies a connection failure, for the log: its message and code (node-postgres attaches its client,
 * connection parameters included, to some errors).
 */
export const describeConnectionError = (err: unknown) => ({
  message: (err as Error | undefined)?.message,
  code: (err as { code?: unknown } | undefined)?.code,
});

/** Base of Inkwell's own errors: a stable `code`, and whether trying again may help. */
export class InkwellError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A command that cannot be applied; answered on `<prefix>.rejected` or as an HTTP error. */
export class CommandError extends InkwellError {
  constructor(
    override readonly code: CommandErrorCode,
    message: string,
  ) {
    super(code, message, false);
  }
}

/**
 * A `StageFailure` (machines/blog.types.ts) as an adapter throws it: a provider call that failed, with its code,
 * whether trying again may help and the provider's `Retry-After`. The stage actor turns it into the plain
 * `StageFailure` the machine decides on (stamped with when, and what the attempt spent).
 */
export class StageFailureError extends InkwellError implements Omit<StageFailure, 'at' | 'usage'> {
  constructor(
    code: string,
    message: string,
    retryable: boolean,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, retryable, options);
  }
}

/** Configuration that does not parse; `main` prints it as one line and exits non-zero. */
export class ConfigError extends InkwellError {
  constructor(message: string) {
    super('INVALID_CONFIG', message, false);
  }
}

/** A persisted snapshot that cannot be migrated or restored. */
export class SnapshotError extends InkwellError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SNAPSHOT_UNRESTORABLE', message, false, options);
  }
}

/** A write that lost its race (version or lease changed underneath). */
export class ConflictError extends InkwellError {
  constructor(message: string) {
    super('CONFLICT', message, true);
  }
}

/**
 * A provider call not made because this process's lease on its store has run out by its own clock (its renewals
 * did not get through, usually because the database is unreachable). Waited out like an outage: once the lease is
 * renewed the call is made, and if the store was lost meanwhile its actor has stopped.
 */
export class LeaseExpiredError extends InkwellError {
  constructor(instanceId: string) {
    super('LEASE_EXPIRED', `the lease on store ${instanceId} has run out by this process's clock; call not made`, true);
  }
}

/** A service Inkwell runs on (not a provider): its outages are waited out, never counted as failures. */
export type InfrastructureService = 'postgres' | 'nats' | 'redis';

/** Socket-level codes of a server that went away (or is not there yet). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/**
 * SQLSTATEs of a server that is restarting, failing over or full: class 08 (connection exception), 57P01–57P03
 * (admin shutdown, crash shutdown, cannot connect now) and 53300 (too many connections).
 */
const UNREACHABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/** What node-postgres and ioredis say, without a code, when the connection broke or never opened. */
const UNREACHABLE_MESSAGE =
  /connection terminated|not queryable|timeout exceeded when trying to connect|connection is closed|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * Whether `error` (or one of its causes) says a server could not be reached, rather than that a request was wrong.
 * A `StageFailureError` is never one: it is a provider's answer, even when its cause was a refused connection.
 */
export function isConnectionFailure(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    if (e instanceof StageFailureError) return false;
    if (e instanceof LeaseExpiredError) return true; // the lease could not be renewed in time: wait, like an outage
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNREACHABLE_SQLSTATE.test(code))) return true;
    if (typeof message === 'string' && UNREACHABLE_MESSAGE.test(message)) return true;
    if (e instanceof AggregateError && e.errors.some(isConnectionFailure)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
