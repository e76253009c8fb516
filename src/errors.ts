/** Codes a command can be rejected with, over NATS and HTTP alike. */
export type CommandErrorCode = 'INVALID_PAYLOAD' | 'NOT_FOUND' | 'INVALID_STATE' | 'INVALID_SELECTION' | 'UNAUTHORIZED';

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

/** A provider call that failed; the stage actor turns it into a machine `StageError`. */
export class StageFailure extends InkwellError {
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
