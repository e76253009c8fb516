/**
 * How a process of `npm start` answers stop signals: the first SIGTERM or SIGINT starts the one drain, and nothing
 * but a forced stop cuts it short. Several copies of one stop are normal: a supervisor that signals the whole
 * process group reaches node directly and through npm, which forwards what it gets. So a repeated SIGTERM is
 * ignored, and a SIGINT forces only when it comes `repeatGapMs` or more after the first one (Ctrl-C pressed again,
 * not the same Ctrl-C relayed). The drain's deadline holds whatever arrives. Loaded before anything else, so a stop
 * during start-up is seen too: keep this file free of imports that run code.
 */
import type { Logger } from '../logger';

/** Exit statuses of `npm start`. */
export const EXIT = { drained: 0, failed: 1, badConfig: 2, forced: 130 } as const;

/** The process's stop request, as start-up and the composition root see it. */
export interface StopSignals {
  /** Aborted by the first SIGTERM or SIGINT; start-up checks it between its phases. */
  readonly signal: AbortSignal;
  /** Resolves with the first SIGTERM or SIGINT. */
  readonly requested: Promise<NodeJS.Signals>;
  /** Reports through `log` from now on; a stop requested before is reported at once. */
  useLogger(log: Logger): void;
}

/** Timings and the process hooks (replaceable in tests). */
export interface StopSignalOptions {
  /** From the first signal to a forced exit (status 1) if the drain has not ended. */
  deadlineMs: number;
  /** A SIGINT this long or longer after the first one forces an exit (status 130). */
  repeatGapMs: number;
  exit?: (code: number) => void;
  now?: () => number;
  /** Where a forced exit's one line goes before a logger exists, and beside it after. */
  stderr?: (line: string) => void;
  target?: Pick<NodeJS.Process, 'on'>;
  /** Signals that came before (see early.signals.cjs), handed over once; default: what that preload recorded. */
  early?: () => EarlySignal[];
}

/** A signal recorded before the watcher existed. */
export interface EarlySignal {
  signal: NodeJS.Signals;
  at: number;
}

const takeEarlySignals = (): EarlySignal[] =>
  (globalThis as { [key: symbol]: (() => EarlySignal[]) | undefined })[Symbol.for('inkwell.earlySignals')]?.() ?? [];

/** Starts watching SIGTERM and SIGINT. */
export function watchStopSignals(opts: StopSignalOptions): StopSignals {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const now = opts.now ?? Date.now;
  const stderr = opts.stderr ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const target = opts.target ?? process;
  const controller = new AbortController();
  let resolve!: (signal: NodeJS.Signals) => void;
  const requested = new Promise<NodeJS.Signals>((r) => (resolve = r));
  let log: Logger | undefined;
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  let firstSigint: number | undefined;

  const fail = (code: number, message: string, fields: Record<string, unknown> = {}) => {
    log?.error(fields, message);
    stderr(`inkwell: ${message} (exit ${code})`);
    exit(code);
  };

  const onSignal = (signal: NodeJS.Signals, at = now()) => {
    if (signal === 'SIGINT' && firstSigint !== undefined && at - firstSigint >= opts.repeatGapMs) {
      return fail(EXIT.forced, 'second SIGINT: exiting now, without finishing the drain', { signal });
    }
    if (signal === 'SIGINT') firstSigint ??= at;
    if (first) {
      log?.debug({ signal, sinceFirstMs: at - first.at }, 'already draining: signal ignored');
      return;
    }
    first = { signal, at };
    log?.info({ signal }, 'draining');
    const deadline = setTimeout(
      () => fail(EXIT.failed, `drain took longer than ${opts.deadlineMs / 1000} s: exiting`),
      Math.max(0, opts.deadlineMs - (now() - at)),
    );
    deadline.unref();
    controller.abort();
    resolve(signal);
  };
  target.on('SIGTERM', (signal) => onSignal(signal));
  target.on('SIGINT', (signal) => onSignal(signal));
  // Ours listen first, then the preload's stop: no moment without a listener.
  for (const { signal, at } of (opts.early ?? takeEarlySignals)()) onSignal(signal, at);

  return {
    signal: controller.signal,
    requested,
    useLogger(next) {
      log = next;
      if (first) log.info({ signal: first.signal }, 'draining');
    },
  };
}
